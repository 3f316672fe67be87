/**
 * KeyRing against AWS KMS as served by a real moto server. Observed moto behaviour (moto 5):
 * Decrypt and GenerateDataKey still succeed on disabled keys and keys pending deletion (AWS KMS
 * answers DisabledException / KMSInvalidStateException), which is why KeyRing checks KeyState
 * with DescribeKey first; DisableKey, EnableKey and ScheduleKeyDeletion answer HTTP 500 when given
 * a key ARN, so these tests pass the key id.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyRing, KeyUnavailableError } from '../../src/security/key-ring.js'
import type { AwsKmsOptions } from '../../src/security/key-ring.js'
import { SecretUnreadableError } from '../../src/security/secret-box.js'
import { startMotoServer } from '../support/moto-server.js'
import type { MotoServer } from '../support/moto-server.js'

const SECRET = { fernetKey: 'kms-protected-value-9d1e' }
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' }

let moto: MotoServer | undefined
let kms: KMSClient | undefined
let root: string | undefined
const rings: KeyRing[] = []

beforeAll(async () => {
  moto = await startMotoServer()
  kms = new KMSClient({ endpoint: moto.endpoint, region: 'us-east-1', credentials })
  root = await mkdtemp(path.join(tmpdir(), 'key-ring-kms-'))
})

afterAll(async () => {
  for (const ring of rings) ring.close()
  kms?.destroy()
  await moto?.stop()
  if (root) await rm(root, { recursive: true, force: true })
})

function client(): KMSClient {
  if (kms === undefined) throw new Error('moto server not started')
  return kms
}

/** A ring over the shared dir; `aws` is moto by default, `'none'` for no AWS KMS access. */
async function openRing(aws: AwsKmsOptions | 'moto' | 'none' = 'moto'): Promise<KeyRing> {
  if (moto === undefined || root === undefined) throw new Error('moto server not started')
  const ring = await KeyRing.open({
    dir: path.join(root, 'kms'),
    masterKeyFile: path.join(root, 'master.key'),
    region: 'us-east-1',
    accountId: '123456789012',
    ...(aws === 'none'
      ? {}
      : { aws: aws === 'moto' ? { endpoint: moto.endpoint, credentials } : aws }),
  })
  rings.push(ring)
  return ring
}

async function createAwsKey(description: string): Promise<{ arn: string; keyId: string }> {
  const { KeyMetadata } = await client().send(new CreateKeyCommand({ Description: description }))
  return { arn: KeyMetadata!.Arn!, keyId: KeyMetadata!.KeyId! }
}

describe('KeyRing with AWS KMS (moto)', () => {
  it('seals under an AWS KMS key with GenerateDataKey and opens with Decrypt', async () => {
    const ring = await openRing()
    const key = await createAwsKey('environment secrets')
    await expect(ring.validateKeyForUse(key.arn)).resolves.toBeUndefined()
    expect(await ring.isKnownKey(key.arn)).toBe(false)
    expect(await ring.describeKey(key.arn)).toMatchObject({
      keyId: key.keyId,
      arn: key.arn,
      description: 'environment secrets',
      createdAt: expect.any(Date),
      origin: 'AWS_KMS',
    })

    const sealed = await ring.sealJson(SECRET, key.arn)
    const parts = sealed.split('.')
    expect(parts).toHaveLength(6)
    expect(Buffer.from(parts[1]!, 'base64url').toString('utf8')).toBe(key.arn)
    expect(parts[2]).not.toContain('~')
    expect(sealed).not.toContain(SECRET.fernetKey)
    expect(await ring.openJson(sealed)).toEqual(SECRET)
    // The wrapped data key is a KMS CiphertextBlob bound to airdock's encryption context.
    const blob = Buffer.from(parts[2]!, 'base64url')
    const { Plaintext } = await client().send(
      new DecryptCommand({
        CiphertextBlob: blob,
        EncryptionContext: { 'airdock:purpose': 'environment-secret' },
      }),
    )
    expect(Plaintext).toHaveLength(32)
    const dataKey = Buffer.from(Plaintext!)
    for (const leak of [dataKey.toString('base64url'), dataKey.toString('hex')]) {
      expect(sealed).not.toContain(leak)
    }
    // Nothing of an AWS KMS key is written under dir.
    expect(await readdir(path.join(root!, 'kms'))).toEqual([])
    expect(await readFile(path.join(root!, 'master.key'), 'utf8')).not.toContain(
      dataKey.toString('base64'),
    )

    // A ring without AWS access cannot open it.
    const offline = await openRing('none')
    await expect(offline.openJson(sealed)).rejects.toMatchObject({
      name: 'KeyUnavailableError',
      keyArn: key.arn,
      reason: 'kms-error',
    })
    await expect(offline.sealJson(SECRET, key.arn)).rejects.toMatchObject({ reason: 'not-found' })
    // Tampering with the blob or the body is reported as such.
    const tampered = [...parts]
    tampered[2] = Buffer.from(blob.map((b, i) => (i === blob.length - 1 ? b ^ 1 : b))).toString(
      'base64url',
    )
    await expect(ring.openJson(tampered.join('.'))).rejects.toBeInstanceOf(SecretUnreadableError)
    const body = [...parts]
    body[5] = body[5]!.startsWith('A') ? `B${body[5]!.slice(1)}` : `A${body[5]!.slice(1)}`
    await expect(ring.openJson(body.join('.'))).rejects.toBeInstanceOf(SecretUnreadableError)
  })

  it('records the key ARN behind an alias', async () => {
    const ring = await openRing()
    const key = await createAwsKey('aliased')
    await client().send(
      new CreateAliasCommand({ AliasName: 'alias/airdock-test', TargetKeyId: key.keyId }),
    )
    await expect(ring.validateKeyForUse('alias/airdock-test')).resolves.toBeUndefined()
    const sealed = await ring.sealJson(SECRET, 'alias/airdock-test')
    expect(Buffer.from(sealed.split('.')[1]!, 'base64url').toString('utf8')).toBe(key.arn)
    expect(await ring.openJson(sealed)).toEqual(SECRET)
  })

  it('refuses a disabled key and opens again once it is enabled', async () => {
    const ring = await openRing()
    const key = await createAwsKey('to disable')
    const sealed = await ring.sealJson(SECRET, key.arn)
    await client().send(new DisableKeyCommand({ KeyId: key.keyId }))

    const err = await ring.openJson(sealed).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KeyUnavailableError)
    expect(err).toMatchObject({ keyArn: key.arn, reason: 'disabled' })
    expect((err as Error).message).toBe(
      `The KMS key ${key.arn} that protects this secret is disabled (AWS KMS KeyState Disabled); the secret cannot be decrypted.`,
    )
    await expect(ring.validateKeyForUse(key.arn)).rejects.toMatchObject({ reason: 'disabled' })
    await expect(ring.sealJson(SECRET, key.arn)).rejects.toMatchObject({ reason: 'disabled' })

    await client().send(new EnableKeyCommand({ KeyId: key.keyId }))
    expect(await ring.openJson(sealed)).toEqual(SECRET)
  })

  it('refuses a key pending deletion as deleted', async () => {
    const ring = await openRing()
    const key = await createAwsKey('to delete')
    const sealed = await ring.sealJson(SECRET, key.arn)
    await client().send(
      new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: 7 }),
    )

    const err = await ring.openJson(sealed).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KeyUnavailableError)
    expect(err).toMatchObject({ keyArn: key.arn, reason: 'deleted' })
    expect((err as Error).message).toMatch(
      /^The KMS key arn:aws:kms:us-east-1:123456789012:key\/[0-9a-f-]+ that protects this secret is pending deletion on \d{4}-.*; the secret cannot be decrypted\.$/,
    )
    await expect(ring.validateKeyForUse(key.arn)).rejects.toMatchObject({ reason: 'deleted' })
  })

  it('reports unknown keys as not found and an unreachable KMS as kms-error', async () => {
    const ring = await openRing()
    const missing = 'arn:aws:kms:us-east-1:123456789012:key/0f0f0f0f-1111-4222-8333-444455556666'
    await expect(ring.validateKeyForUse(missing)).rejects.toMatchObject({ reason: 'not-found' })
    await expect(ring.validateKeyForUse('alias/nope')).rejects.toMatchObject({
      reason: 'not-found',
    })
    await expect(ring.sealJson(SECRET, missing)).rejects.toMatchObject({ reason: 'not-found' })
    await expect(ring.describeKey(missing)).rejects.toMatchObject({ reason: 'not-found' })
    // A value whose key is gone from AWS KMS was sealed under it, so the key was deleted.
    const sealed = await ring.sealJson(SECRET, (await createAwsKey('gone')).arn)
    const header = Buffer.from(missing).toString('base64url')
    const orphan = ['v2', header, ...sealed.split('.').slice(2)].join('.')
    await expect(ring.openJson(orphan)).rejects.toMatchObject({
      keyArn: missing,
      reason: 'deleted',
    })

    const unreachable = await openRing({ endpoint: 'http://127.0.0.1:9', credentials })
    await expect(unreachable.openJson(sealed)).rejects.toMatchObject({ reason: 'kms-error' })
    // Airdock customer keys keep working next to AWS KMS.
    const own = await ring.createKey('local')
    expect(await ring.openJson(await ring.sealJson(SECRET, own.arn))).toEqual(SECRET)
  })
})
