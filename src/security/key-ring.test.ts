import { createDecipheriv } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { KeyRing, KeyUnavailableError } from './key-ring.js'
import type { KeyRingOptions } from './key-ring.js'
import { SecretBox, SecretUnreadableError } from './secret-box.js'

const SECRET = { fernetKey: 'very-secret-value-4f2c', password: 'hunter2-but-longer' }
const ARN = /^arn:aws:kms:eu-west-1:111122223333:key\/[0-9a-f-]{36}$/

let root: string | undefined
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true })
  root = undefined
})

async function options(): Promise<KeyRingOptions> {
  root ??= await mkdtemp(path.join(tmpdir(), 'key-ring-'))
  return {
    dir: path.join(root, 'kms'),
    masterKeyFile: path.join(root, 'master.key'),
    region: 'eu-west-1',
    accountId: '111122223333',
  }
}

/** The forms a secret byte string could leak in. */
function encodings(bytes: Buffer): string[] {
  return [
    bytes.toString('hex'),
    bytes.toString('base64'),
    bytes.toString('base64url'),
    bytes.toString('latin1'),
  ]
}

function gcmOpen(key: Buffer, [iv, tag, ct]: string[], aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'))
  decipher.setAAD(Buffer.from(aad))
  decipher.setAuthTag(Buffer.from(tag!, 'base64url'))
  return Buffer.concat([decipher.update(Buffer.from(ct!, 'base64url')), decipher.final()])
}

/** Unwraps a customer key file by hand (the documented format), to know what must not leak. */
async function keyMaterial(opts: KeyRingOptions, keyId: string): Promise<Buffer> {
  const master = Buffer.from((await readFile(opts.masterKeyFile, 'utf8')).trim(), 'base64')
  const file = JSON.parse(await readFile(path.join(opts.dir, `${keyId}.json`), 'utf8'))
  return gcmOpen(master, file.wrappedKey.split('~'), `airdock-kms-key:${keyId}`)
}

/** The data key of a v2 value wrapped by `wrappingKey`. */
function dataKeyOf(sealed: string, wrappingKey: Buffer): Buffer {
  const [, header, wrapped] = sealed.split('.')
  return gcmOpen(wrappingKey, wrapped!.split('~'), `v2.${header}`)
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name))
}

/** Replaces one character of part `index` of a sealed value. */
function tamper(sealed: string, index: number): string {
  const parts = sealed.split('.')
  const part = parts[index]!
  const at = Math.floor(part.length / 2)
  parts[index] = part.slice(0, at) + (part[at] === 'A' ? 'B' : 'A') + part.slice(at + 1)
  return parts.join('.')
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

describe('KeyRing', () => {
  it('creates a 0600 master key like SecretBox and seals under it by default', async () => {
    const opts = await options()
    const ring = await KeyRing.open(opts)
    expect((await stat(opts.masterKeyFile)).mode & 0o777).toBe(0o600)
    expect((await stat(opts.dir)).mode & 0o777).toBe(0o700)
    const sealed = await ring.sealJson(SECRET)
    expect(sealed.startsWith('v2..')).toBe(true)
    expect(sealed.split('.')).toHaveLength(6)
    expect(sealed).not.toContain(SECRET.fernetKey)
    expect(await ring.openJson(sealed)).toEqual(SECRET)
    expect(await ring.sealJson(SECRET)).not.toBe(sealed)

    const master = Buffer.from((await readFile(opts.masterKeyFile, 'utf8')).trim(), 'base64')
    expect(master).toHaveLength(32)
    const dataKey = dataKeyOf(sealed, master)
    for (const leak of [...encodings(master), ...encodings(dataKey)]) {
      expect(sealed).not.toContain(leak)
    }
    // The master key file is the one SecretBox reads.
    expect((await SecretBox.openOrCreate(opts.masterKeyFile)).sealJson('x')).toMatch(/^v1\./)
  })

  it('creates, lists and describes customer keys stored wrapped in 0600 files', async () => {
    const opts = await options()
    const ring = await KeyRing.open(opts)
    const key = await ring.createKey('secrets of prod')
    expect(key).toEqual({
      keyId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-/),
      arn: expect.stringMatching(ARN),
      description: 'secrets of prod',
      createdAt: expect.any(Date),
      origin: 'AIRDOCK',
    })
    expect(key.arn.endsWith(`:key/${key.keyId}`)).toBe(true)
    const other = await ring.createKey()
    expect(other.description).toBe('')
    // Oldest first; two keys made in the same millisecond come in key-id order.
    const expectedOrder =
      key.createdAt.getTime() === other.createdAt.getTime()
        ? [key, other].sort((a, b) => a.keyId.localeCompare(b.keyId))
        : [key, other]
    expect(await ring.listKeys()).toEqual(expectedOrder)
    expect(await ring.describeKey(key.arn)).toEqual(key)
    expect(await ring.describeKey(key.keyId)).toEqual(key)
    expect(await ring.describeKey(`key/${key.keyId}`)).toEqual(key)
    expect(await ring.isKnownKey(key.arn)).toBe(true)
    expect(await ring.isKnownKey(key.keyId)).toBe(true)
    expect(await ring.isKnownKey(key.arn.replace('eu-west-1', 'us-east-1'))).toBe(false)
    await expect(ring.validateKeyForUse(key.arn)).resolves.toBeUndefined()

    expect((await stat(opts.dir)).mode & 0o777).toBe(0o700)
    const files = await filesUnder(opts.dir)
    expect(files.map((f) => path.basename(f)).sort()).toEqual(
      [`${key.keyId}.json`, `${other.keyId}.json`].sort(),
    )
    for (const file of files) expect((await stat(file)).mode & 0o777).toBe(0o600)
  })

  it('round-trips under a customer key without the plaintext or key material in the clear', async () => {
    const opts = await options()
    const ring = await KeyRing.open(opts)
    const key = await ring.createKey('prod')
    const sealed = await ring.sealJson(SECRET, key.arn)
    const [version, header] = sealed.split('.')
    expect(version).toBe('v2')
    expect(Buffer.from(header!, 'base64url').toString('utf8')).toBe(key.arn)
    expect(await ring.openJson(sealed)).toEqual(SECRET)
    // A key id names the same key; the ARN is what the sealed value records.
    const byId = await ring.sealJson(SECRET, key.keyId)
    expect(byId.split('.')[1]).toBe(header)
    expect(await ring.openJson(byId)).toEqual(SECRET)

    const material = await keyMaterial(opts, key.keyId)
    expect(material).toHaveLength(32)
    const dataKey = dataKeyOf(sealed, material)
    const master = Buffer.from((await readFile(opts.masterKeyFile, 'utf8')).trim(), 'base64')
    // Not wrapped by the master key directly.
    expect(() => dataKeyOf(sealed, master)).toThrow()
    const leaks = [SECRET.fernetKey, SECRET.password, ...encodings(material), ...encodings(dataKey)]
    for (const leak of leaks) expect(sealed).not.toContain(leak)
    for (const file of await filesUnder(opts.dir)) {
      const bytes = await readFile(file)
      for (const leak of leaks) expect(bytes.includes(Buffer.from(leak, 'latin1'))).toBe(false)
      expect(bytes.includes(material)).toBe(false)
    }
  })

  it('reopens from disk: keys, master-key values and customer-key values survive', async () => {
    const opts = await options()
    const first = await KeyRing.open(opts)
    const key = await first.createKey('prod')
    const underMaster = await first.sealJson(SECRET)
    const underKey = await first.sealJson(SECRET, key.arn)
    const masterFile = await readFile(opts.masterKeyFile, 'utf8')

    const second = await KeyRing.open(opts)
    expect(await readFile(opts.masterKeyFile, 'utf8')).toBe(masterFile)
    expect(await second.listKeys()).toEqual([key])
    expect(await second.openJson(underMaster)).toEqual(SECRET)
    expect(await second.openJson(underKey)).toEqual(SECRET)
    // A key created by another process (the CLI) is visible without reopening.
    const late = await second.createKey('late')
    expect(await first.openJson(await second.sealJson(SECRET, late.arn))).toEqual(SECRET)
  })

  it('deletes a key at once: its values can no longer be opened', async () => {
    const opts = await options()
    const ring = await KeyRing.open(opts)
    const key = await ring.createKey('doomed')
    const keep = await ring.createKey('kept')
    const sealed = await ring.sealJson(SECRET, key.arn)
    const kept = await ring.sealJson(SECRET, keep.arn)

    expect(await ring.deleteKey(key.arn)).toEqual(key)
    expect(await readdir(opts.dir)).toEqual([`${keep.keyId}.json`])
    expect(await ring.listKeys()).toEqual([keep])
    expect(await ring.isKnownKey(key.arn)).toBe(false)

    const err = await rejection(ring.openJson(sealed))
    expect(err).toBeInstanceOf(KeyUnavailableError)
    expect(err).toMatchObject({ keyArn: key.arn, reason: 'deleted' })
    expect((err as Error).message).toBe(
      `The KMS key ${key.arn} that protects this secret has been deleted; the secret cannot be decrypted.`,
    )
    // A second ring opened later says the same.
    await expect((await KeyRing.open(opts)).openJson(sealed)).rejects.toMatchObject({
      reason: 'deleted',
    })
    expect(await ring.openJson(kept)).toEqual(SECRET)

    for (const attempt of [
      ring.describeKey(key.arn),
      ring.deleteKey(key.arn),
      ring.sealJson(SECRET, key.arn),
      ring.validateKeyForUse(key.arn),
    ]) {
      await expect(attempt).rejects.toMatchObject({
        name: 'KeyUnavailableError',
        reason: 'not-found',
      })
    }
  })

  it('rejects keys that are neither ours nor reachable in AWS KMS', async () => {
    const ring = await KeyRing.open(await options())
    const foreign = 'arn:aws:kms:us-east-1:123456789012:key/0f0f0f0f-1111-4222-8333-444455556666'
    for (const ref of [foreign, 'alias/aws/airflow', '../master', 'key/../../etc/passwd']) {
      await expect(ring.validateKeyForUse(ref)).rejects.toMatchObject({
        keyArn: ref,
        reason: 'not-found',
      })
      await expect(ring.sealJson(SECRET, ref)).rejects.toBeInstanceOf(KeyUnavailableError)
      await expect(ring.describeKey(ref)).rejects.toBeInstanceOf(KeyUnavailableError)
      expect(await ring.isKnownKey(ref)).toBe(false)
    }
    // A value sealed under AWS KMS elsewhere cannot be opened without AWS KMS access.
    const header = Buffer.from(foreign).toString('base64url')
    const awsSealed = `v2.${header}.AQIDBA.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AA`
    await expect(ring.openJson(awsSealed)).rejects.toMatchObject({
      keyArn: foreign,
      reason: 'kms-error',
    })
  })

  it('detects tampering and a different master key', async () => {
    const opts = await options()
    const ring = await KeyRing.open(opts)
    const key = await ring.createKey()
    const other = await ring.createKey()
    for (const sealed of [await ring.sealJson(SECRET), await ring.sealJson(SECRET, key.arn)]) {
      for (const index of [2, 3, 4, 5]) {
        await expect(ring.openJson(tamper(sealed, index))).rejects.toBeInstanceOf(
          SecretUnreadableError,
        )
      }
      await expect(ring.openJson(sealed.replace(/^v2/, 'v3'))).rejects.toBeInstanceOf(
        SecretUnreadableError,
      )
      await expect(ring.openJson(sealed + '.x')).rejects.toBeInstanceOf(SecretUnreadableError)
    }
    // Moving a value to another key (header swap) is detected, in both directions.
    const underKey = await ring.sealJson(SECRET, key.arn)
    const otherHeader = Buffer.from(other.arn).toString('base64url')
    const swapped = underKey.split('.')
    swapped[1] = otherHeader
    await expect(ring.openJson(swapped.join('.'))).rejects.toBeInstanceOf(SecretUnreadableError)
    swapped[1] = ''
    await expect(ring.openJson(swapped.join('.'))).rejects.toBeInstanceOf(SecretUnreadableError)
    // Swapping key files is detected too (the material is bound to its key id).
    await writeFile(
      path.join(opts.dir, `${key.keyId}.json`),
      (await readFile(path.join(opts.dir, `${other.keyId}.json`), 'utf8')).replaceAll(
        other.keyId,
        key.keyId,
      ),
    )
    await expect(ring.openJson(underKey)).rejects.toBeInstanceOf(SecretUnreadableError)

    const underMaster = await ring.sealJson(SECRET)
    const underOther = await ring.sealJson(SECRET, other.arn)
    await rm(opts.masterKeyFile)
    const stranger = await KeyRing.open(opts)
    await expect(stranger.openJson(underMaster)).rejects.toBeInstanceOf(SecretUnreadableError)
    await expect(stranger.openJson(underOther)).rejects.toBeInstanceOf(SecretUnreadableError)
    await expect(stranger.validateKeyForUse(other.arn)).rejects.toBeInstanceOf(
      SecretUnreadableError,
    )
  })

  it('opens v1 values sealed by SecretBox under the same master key', async () => {
    const opts = await options()
    const box = await SecretBox.openOrCreate(opts.masterKeyFile)
    const v1 = box.sealJson(SECRET)
    const ring = await KeyRing.open(opts)
    expect(await ring.openJson(v1)).toEqual(SECRET)
    await expect(ring.openJson(tamper(v1, 4))).rejects.toBeInstanceOf(SecretUnreadableError)
  })

  it('refuses a master key file that does not hold 32 bytes and values without JSON', async () => {
    const opts = await options()
    await writeFile(opts.masterKeyFile, 'c2hvcnQ=\n', { mode: 0o600 })
    await expect(KeyRing.open(opts)).rejects.toBeInstanceOf(SecretUnreadableError)
    await rm(opts.masterKeyFile)
    const ring = await KeyRing.open(opts)
    await expect(ring.sealJson(undefined)).rejects.toBeInstanceOf(TypeError)
    expect(await ring.openJson(await ring.sealJson(null))).toBeNull()
  })
})
