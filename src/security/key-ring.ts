/**
 * The key ring (DESIGN.md decision 8): envelope encryption of environment secrets under one of
 * several keys — the local master key (the default), an airdock customer key ("airdock kms
 * create-key"), or a real AWS KMS key (an environment's `KmsKey` that is not one of ours).
 *
 * Every sealed value gets its own random 256-bit data key; the JSON plaintext is encrypted with it
 * (AES-256-GCM) and only the wrapped data key is kept next to the ciphertext.
 *
 * Sealed format v2 (all parts base64url, joined with `.`):
 *
 *     v2.<keyArn>.<wrapped data key>.<iv>.<tag>.<ciphertext>
 *
 * - `keyArn` is the UTF-8 ARN of the wrapping key, empty for the master key. For AWS KMS it is the
 *   key ARN that GenerateDataKey reported, so a value sealed under an alias stays readable when
 *   the alias is later pointed at another key (AWS binds the ciphertext to the key, not the alias).
 * - `wrapped data key` is `<iv>~<tag>~<ciphertext>` (AES-256-GCM under the master key or the
 *   customer key) or, for AWS KMS, the single part `CiphertextBlob` of GenerateDataKey, which was
 *   called with the encryption context `{"airdock:purpose": "environment-secret"}`.
 * - The GCM additional data of both the wrapped data key and the body is `v2.<keyArn part>`, so
 *   the header cannot be swapped without the value becoming unreadable.
 *
 * `openJson` also opens SecretBox's `v1.` values (master key only), so older data stays readable.
 *
 * Customer keys live in `{dir}/{uuid}.json` (mode 0600, `dir` mode 0700):
 * `{"version":1,"keyId","arn","description","createdAt":"<ISO 8601>","origin":"AIRDOCK",
 * "wrappedKey":"<iv>~<tag>~<ciphertext>"}` where `wrappedKey` is the 32-byte key material under
 * the master key (AES-256-GCM, additional data `airdock-kms-key:<uuid>`); the material is never
 * written in the clear. Key files are read on every use, so a key created or deleted by another
 * process (the CLI) takes effect at once.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { chmod, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyCommand,
  KMSClient,
} from '@aws-sdk/client-kms'
import type { KeyMetadata as AwsKeyMetadata } from '@aws-sdk/client-kms'
import { KMS_KEY_ID_SOURCE, kmsKeyArn } from '../domain/arns.js'
import { gcmOpen, gcmSeal, SecretBox, SecretUnreadableError } from './secret-box.js'

/** Where a key lives: an airdock customer key (key file under `dir`) or a key in AWS KMS. */
export type KeyOrigin = 'AIRDOCK' | 'AWS_KMS'

/** A key as `createKey`, `listKeys` and `describeKey` report it (the material is never shown). */
export interface KeyMetadata {
  /** The key id, a UUID such as `0e1f…-…`; AWS KMS keys report their own key id. */
  keyId: string
  /** `arn:aws:kms:{region}:{accountId}:key/{keyId}`. */
  arn: string
  /** Free text given at creation; `''` when none was given. */
  description: string
  /** When the key was created. */
  createdAt: Date
  /** `AIRDOCK` for keys of this ring, `AWS_KMS` for keys described through AWS KMS. */
  origin: KeyOrigin
}

/**
 * Why a key cannot be used: `deleted` (an airdock key was deleted, or an AWS KMS key is deleted
 * or pending deletion), `not-found` (no such key), `disabled` (an AWS KMS key whose KeyState is
 * not `Enabled`, other than pending deletion) or `kms-error` (AWS KMS is not configured, not
 * reachable, refused the request, or the key is not a symmetric encryption key).
 */
export type KeyUnavailableReason = 'deleted' | 'not-found' | 'disabled' | 'kms-error'

/**
 * Thrown when the key a secret is (to be) sealed under cannot be used, e.g. `The KMS key
 * arn:aws:kms:us-east-1:123456789012:key/… that protects this secret has been deleted; the secret
 * cannot be decrypted.`
 */
export class KeyUnavailableError extends Error {
  override name = 'KeyUnavailableError'

  /**
   * @param keyArn - the key as referenced (ARN, key id or alias)
   * @param reason - why it cannot be used
   * @param message - a sentence for the operator
   */
  constructor(
    readonly keyArn: string,
    readonly reason: KeyUnavailableReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** How to reach AWS KMS (or a KMS-compatible service such as moto). */
export interface AwsKmsOptions {
  /** Endpoint URL, e.g. `http://127.0.0.1:5000`; omit for the AWS KMS endpoint of the region. */
  endpoint?: string
  /**
   * Region for key ids and aliases that carry none (`alias/…`, bare key ids); defaults to the
   * ring's `region`. Key and alias ARNs are always sent to the region they name.
   */
  region?: string
  /** Static credentials; omit to use the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string }
}

/** Options of `KeyRing.open`. */
export interface KeyRingOptions {
  /** Directory of the customer key files, e.g. `$AIRDOCK_DATA_DIR/kms`; created with mode 0700. */
  dir: string
  /** The master key file (SecretBox format: 32 random bytes, base64, mode 0600). */
  masterKeyFile: string
  /** Region written into the ARNs of new customer keys, e.g. `us-east-1`. */
  region: string
  /** Account id written into the ARNs of new customer keys, e.g. `123456789012`. */
  accountId: string
  /** AWS KMS access; without it only the master key and airdock customer keys can be used. */
  aws?: AwsKmsOptions
}

/** Encryption context bound to every AWS KMS data key (GenerateDataKey and Decrypt). */
const ENCRYPTION_CONTEXT = { 'airdock:purpose': 'environment-secret' }

const UUID = KMS_KEY_ID_SOURCE
/** A bare key id or `key/<id>`. */
const KEY_ID_PATTERN = new RegExp(`^(?:key/)?(${UUID})$`)
/** Any KMS key ARN; group 1 is the region, group 2 the key id. */
const KEY_ARN_PATTERN = new RegExp(`^arn:aws[a-z-]*:kms:([a-z0-9-]+):[^:]+:key/(${UUID})$`)
/** A reference AWS KMS accepts as `KeyId`: key ARN, alias ARN, `alias/…` or a bare key id. */
const AWS_KEY_REF_PATTERN = new RegExp(
  `^(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:\\d{12}:(?:key/${UUID}|alias/.+)|alias/.+|${UUID})$`,
)
const ARN_REGION_PATTERN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):/
const KEY_FILE_PATTERN = new RegExp(`^(${UUID})\\.json$`)

/** What a key is being used for; it chooses the wording and reason of errors. */
type KeyUse = 'decrypt' | 'encrypt'

/** Contents of a customer key file. */
interface KeyFile {
  version: 1
  keyId: string
  arn: string
  description: string
  createdAt: string
  origin: 'AIRDOCK'
  wrappedKey: string
}

/**
 * {@link gcmOpen} with the failure as a SecretUnreadableError carrying `message`.
 * @throws SecretUnreadableError when the key or the additional data do not match
 */
function openOrRefuse(key: Buffer, parts: readonly string[], aad: string, message: string): Buffer {
  try {
    return gcmOpen(key, parts, aad)
  } catch (err) {
    throw new SecretUnreadableError(message, { cause: err })
  }
}

/** Optional parts of a `KeyUnavailableError`. */
interface UnavailableDetails {
  /** Replaces the reason's phrase, e.g. `is pending deletion`. */
  what?: string
  /** Appended in parentheses, e.g. the AWS KMS error. */
  detail?: string
  cause?: unknown
}

/** The `KeyUnavailableError` for `keyArn`, worded for its use. */
function unavailable(
  keyArn: string,
  reason: KeyUnavailableReason,
  use: KeyUse,
  { what, detail, cause }: UnavailableDetails = {},
): KeyUnavailableError {
  const phrase =
    what ??
    {
      deleted: 'has been deleted',
      'not-found': 'does not exist',
      disabled: 'is disabled',
      'kms-error': 'cannot be used',
    }[reason]
  const why = detail === undefined ? '' : ` (${detail})`
  const message =
    use === 'decrypt'
      ? `The KMS key ${keyArn} that protects this secret ${phrase}${why}; the secret cannot be decrypted.`
      : `The KMS key ${keyArn} ${phrase}${why}; it cannot be used to encrypt secrets.`
  return new KeyUnavailableError(keyArn, reason, message, cause === undefined ? {} : { cause })
}

/**
 * Seals and opens environment secrets under the master key, airdock customer keys or AWS KMS
 * keys. Open one with `KeyRing.open`; call `close` when done if AWS KMS was configured.
 */
export class KeyRing {
  private readonly legacy: SecretBox
  private readonly masterKey: Buffer
  private readonly options: KeyRingOptions
  private readonly clients = new Map<string, KMSClient>()

  private constructor(legacy: SecretBox, masterKey: Buffer, options: KeyRingOptions) {
    this.legacy = legacy
    this.masterKey = masterKey
    this.options = options
  }

  /**
   * Opens the ring: loads the master key, creating it on first start exactly like
   * `SecretBox.openOrCreate` (32 random bytes, mode 0600), and creates `dir` (mode 0700).
   * @throws SecretUnreadableError when the master key file exists but does not hold a 32-byte key
   */
  static async open(options: KeyRingOptions): Promise<KeyRing> {
    const legacy = await SecretBox.openOrCreate(options.masterKeyFile)
    const masterKey = Buffer.from((await readFile(options.masterKeyFile, 'utf8')).trim(), 'base64')
    if (masterKey.length !== 32) {
      throw new SecretUnreadableError(`master key ${options.masterKeyFile} is not 32 bytes`)
    }
    await mkdir(options.dir, { recursive: true, mode: 0o700 })
    await chmod(options.dir, 0o700)
    return new KeyRing(legacy, masterKey, options)
  }

  /**
   * Creates a customer key: 32 random bytes with a random UUID key id and the ARN
   * `arn:aws:kms:{region}:{accountId}:key/{uuid}`, stored wrapped by the master key in
   * `{dir}/{uuid}.json` (mode 0600).
   * @param description - free text, e.g. `secrets of environment prod`
   */
  async createKey(description = ''): Promise<KeyMetadata> {
    const keyId = randomUUID()
    const material = randomBytes(32)
    const file: KeyFile = {
      version: 1,
      keyId,
      arn: kmsKeyArn(this.options.region, this.options.accountId, keyId),
      description,
      createdAt: new Date().toISOString(),
      origin: 'AIRDOCK',
      wrappedKey: gcmSeal(this.masterKey, material, `airdock-kms-key:${keyId}`).join('~'),
    }
    material.fill(0)
    const target = this.keyPath(keyId)
    const temporary = path.join(this.options.dir, `.${keyId}.json.tmp`)
    await writeFile(temporary, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    await rename(temporary, target)
    return toMetadata(file)
  }

  /** The customer keys of this ring, oldest first (AWS KMS keys are not listed). */
  async listKeys(): Promise<KeyMetadata[]> {
    const keys: KeyMetadata[] = []
    for (const name of await readdir(this.options.dir)) {
      const keyId = KEY_FILE_PATTERN.exec(name)?.[1]
      const file = keyId === undefined ? undefined : await this.readKeyFile(keyId)
      if (file !== undefined) keys.push(toMetadata(file))
    }
    // Oldest first; keys created in the same millisecond in key-id order (stable across calls).
    return keys.sort(
      (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.keyId.localeCompare(b.keyId),
    )
  }

  /**
   * Describes a customer key (by ARN, key id or `key/<id>`), or — when AWS KMS is configured —
   * an AWS KMS key (DescribeKey; the result has origin `AWS_KMS` whatever its KeyState).
   * @throws KeyUnavailableError `not-found` when there is no such key; `kms-error` when AWS KMS
   *   fails
   */
  async describeKey(arnOrId: string): Promise<KeyMetadata> {
    const own = await this.findOwnKey(arnOrId)
    if (own !== undefined) return toMetadata(own)
    const aws = await this.describeAwsKey(arnOrId, 'encrypt')
    return {
      keyId: aws.KeyId ?? arnOrId,
      arn: aws.Arn ?? arnOrId,
      description: aws.Description ?? '',
      createdAt: aws.CreationDate ?? new Date(0),
      origin: 'AWS_KMS',
    }
  }

  /**
   * Deletes a customer key at once: its key file (the only copy of the wrapped material) is
   * removed, and every secret sealed under it becomes unreadable (`openJson` then throws
   * `KeyUnavailableError` with reason `deleted`). AWS KMS instead only schedules deletion
   * (ScheduleKeyDeletion, a waiting period of 7–30 days, default 30, during which the key can be
   * restored); airdock has no waiting period.
   * @returns the metadata of the deleted key
   * @throws KeyUnavailableError `not-found` when it is not a key of this ring
   */
  async deleteKey(arnOrId: string): Promise<KeyMetadata> {
    const own = await this.findOwnKey(arnOrId)
    if (own === undefined) throw unavailable(arnOrId, 'not-found', 'encrypt')
    await rm(this.keyPath(own.keyId), { force: true })
    return toMetadata(own)
  }

  /** Whether `arnOrId` (ARN, key id or `key/<id>`) names an existing customer key of this ring. */
  async isKnownKey(arnOrId: string): Promise<boolean> {
    return (await this.findOwnKey(arnOrId)) !== undefined
  }

  /**
   * Checks that a `KmsKey` can be used, as CreateEnvironment must: a customer key must exist (and
   * unwrap under the master key); any other key must be known to AWS KMS with KeyState `Enabled`
   * and be a symmetric encryption key (`SYMMETRIC_DEFAULT`, the only kind MWAA accepts).
   * @throws KeyUnavailableError `not-found`, `deleted` (pending deletion), `disabled` or
   *   `kms-error`
   * @throws SecretUnreadableError when a customer key does not unwrap under the master key
   */
  async validateKeyForUse(keyArn: string): Promise<void> {
    const own = await this.findOwnKey(keyArn)
    if (own !== undefined) {
      this.unwrapMaterial(own).fill(0)
      return
    }
    await this.describeAwsKey(keyArn, 'encrypt', true)
  }

  /**
   * Encrypts a JSON-serialisable value under a fresh data key wrapped by the master key (no
   * `keyArn`), the customer key `keyArn`, or — when `keyArn` is not ours and AWS KMS is
   * configured — the AWS KMS key `keyArn` (DescribeKey must report KeyState `Enabled`, then
   * GenerateDataKey with KeySpec `AES_256`).
   * @param keyArn - ARN, key id, `alias/…` or alias ARN; `undefined` or `''` for the master key
   * @returns the sealed string (format v2, see the module documentation)
   * @throws KeyUnavailableError when the key cannot be used (see `validateKeyForUse`)
   * @throws TypeError when `value` has no JSON form (e.g. `undefined`)
   */
  async sealJson(value: unknown, keyArn?: string): Promise<string> {
    const json = JSON.stringify(value) as string | undefined
    if (json === undefined) throw new TypeError('value has no JSON representation')
    let header: string
    let wrapped: string
    let dataKey: Buffer
    const own = keyArn === undefined || keyArn === '' ? undefined : await this.findOwnKey(keyArn)
    if (keyArn === undefined || keyArn === '' || own !== undefined) {
      const wrappingKey = own === undefined ? this.masterKey : this.unwrapMaterial(own)
      header = Buffer.from(own?.arn ?? '', 'utf8').toString('base64url')
      dataKey = randomBytes(32)
      wrapped = gcmSeal(wrappingKey, dataKey, `v2.${header}`).join('~')
      if (own !== undefined) wrappingKey.fill(0)
    } else {
      const generated = await this.generateAwsDataKey(keyArn)
      header = Buffer.from(generated.keyArn, 'utf8').toString('base64url')
      dataKey = generated.dataKey
      wrapped = generated.blob.toString('base64url')
    }
    const body = gcmSeal(dataKey, Buffer.from(json, 'utf8'), `v2.${header}`)
    dataKey.fill(0)
    return ['v2', header, wrapped, ...body].join('.')
  }

  /**
   * Decrypts a value sealed by `sealJson` (v2) or by `SecretBox.sealJson` (v1, master key). For
   * AWS KMS the key must still be `Enabled` (DescribeKey), as AWS KMS requires for Decrypt.
   * @throws KeyUnavailableError when the wrapping key was deleted, is disabled or pending
   *   deletion, or AWS KMS cannot be used
   * @throws SecretUnreadableError on an unknown format, tampering, or a missing or different
   *   master key
   */
  async openJson<T>(sealed: string): Promise<T> {
    if (sealed.startsWith('v1.')) return this.legacy.openJson<T>(sealed)
    const parts = sealed.split('.')
    if (parts[0] !== 'v2' || parts.length !== 6) {
      throw new SecretUnreadableError('sealed secret has an unknown format')
    }
    const [, header, wrapped, ...body] = parts as [string, string, string, string, string, string]
    const aad = `v2.${header}`
    const keyArn = Buffer.from(header, 'base64url').toString('utf8')
    const wrappedParts = wrapped.split('~')
    const unreadable = 'secret cannot be decrypted: the master key is missing or does not match'
    let dataKey: Buffer
    if (keyArn === '') {
      dataKey = openOrRefuse(this.masterKey, wrappedParts, aad, unreadable)
    } else if (wrappedParts.length === 3) {
      const keyId = KEY_ARN_PATTERN.exec(keyArn)?.[2]
      if (keyId === undefined) throw new SecretUnreadableError('sealed secret has an unknown key')
      const own = await this.readKeyFile(keyId)
      if (own === undefined) throw unavailable(keyArn, 'deleted', 'decrypt')
      const material = this.unwrapMaterial(own)
      try {
        dataKey = openOrRefuse(
          material,
          wrappedParts,
          aad,
          'secret cannot be decrypted: it was altered',
        )
      } finally {
        material.fill(0)
      }
    } else {
      dataKey = await this.decryptAwsDataKey(keyArn, Buffer.from(wrapped, 'base64url'))
    }
    try {
      const plaintext = openOrRefuse(
        dataKey,
        body,
        aad,
        'secret cannot be decrypted: it was altered',
      )
      return JSON.parse(plaintext.toString('utf8')) as T
    } finally {
      dataKey.fill(0)
    }
  }

  /** Releases the AWS KMS clients (their sockets); the ring can still be used afterwards. */
  close(): void {
    for (const client of this.clients.values()) client.destroy()
    this.clients.clear()
  }

  private keyPath(keyId: string): string {
    return path.join(this.options.dir, `${keyId}.json`)
  }

  /** The key file of a customer key named by ARN (exactly as stored), key id or `key/<id>`. */
  private async findOwnKey(ref: string): Promise<KeyFile | undefined> {
    const byId = KEY_ID_PATTERN.exec(ref)?.[1]
    const keyId = byId ?? KEY_ARN_PATTERN.exec(ref)?.[2]
    if (keyId === undefined) return undefined
    const file = await this.readKeyFile(keyId)
    return file !== undefined && (byId !== undefined || file.arn === ref) ? file : undefined
  }

  /**
   * Reads `{dir}/{keyId}.json`; `undefined` when it does not exist.
   * @throws SecretUnreadableError when the file is not a key file
   */
  private async readKeyFile(keyId: string): Promise<KeyFile | undefined> {
    let text: string
    try {
      text = await readFile(this.keyPath(keyId), 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    let file: Partial<KeyFile> | undefined
    try {
      file = JSON.parse(text) as Partial<KeyFile>
    } catch {
      file = undefined
    }
    if (
      file?.version !== 1 ||
      file.keyId !== keyId ||
      typeof file.arn !== 'string' ||
      typeof file.description !== 'string' ||
      typeof file.createdAt !== 'string' ||
      typeof file.wrappedKey !== 'string'
    ) {
      throw new SecretUnreadableError(`key file ${this.keyPath(keyId)} is malformed`)
    }
    return { ...file, origin: 'AIRDOCK' } as KeyFile
  }

  /** The clear key material of a customer key; the caller wipes it after use. */
  private unwrapMaterial(file: KeyFile): Buffer {
    return openOrRefuse(
      this.masterKey,
      file.wrappedKey.split('~'),
      `airdock-kms-key:${file.keyId}`,
      `customer key ${file.arn} cannot be unwrapped: the master key is missing or does not match`,
    )
  }

  /**
   * The KMS client for a key reference: key and alias ARNs go to the region they name, other
   * references to `aws.region` or the ring's region.
   * @throws KeyUnavailableError when AWS KMS is not configured (`not-found` for encryption — the
   *   key is not ours — and `kms-error` for decryption)
   */
  private kmsFor(ref: string, use: KeyUse): KMSClient {
    const aws = this.options.aws
    if (aws === undefined || !AWS_KEY_REF_PATTERN.test(ref)) {
      if (use === 'decrypt') {
        throw unavailable(ref, 'kms-error', use, { detail: 'AWS KMS is not configured' })
      }
      throw unavailable(ref, 'not-found', use, {
        detail: aws === undefined ? 'no airdock key, AWS KMS not configured' : 'no airdock key',
      })
    }
    const region = ARN_REGION_PATTERN.exec(ref)?.[1] ?? aws.region ?? this.options.region
    let client = this.clients.get(region)
    if (client === undefined) {
      client = new KMSClient({
        region,
        ...(aws.endpoint === undefined ? {} : { endpoint: aws.endpoint }),
        ...(aws.credentials === undefined ? {} : { credentials: aws.credentials }),
        maxAttempts: 3,
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 15_000 },
      })
      this.clients.set(region, client)
    }
    return client
  }

  /**
   * DescribeKey; with `requireUsable`, also insists on KeyState `Enabled` and a symmetric
   * encryption key.
   * @throws KeyUnavailableError as described at `validateKeyForUse`
   */
  private async describeAwsKey(
    ref: string,
    use: KeyUse,
    requireUsable = false,
  ): Promise<AwsKeyMetadata> {
    const kms = this.kmsFor(ref, use)
    let metadata: AwsKeyMetadata | undefined
    try {
      metadata = (await kms.send(new DescribeKeyCommand({ KeyId: ref }))).KeyMetadata
    } catch (err) {
      throw kmsFailure(err, ref, use)
    }
    if (metadata === undefined) {
      throw unavailable(ref, 'kms-error', use, { detail: 'DescribeKey returned no KeyMetadata' })
    }
    if (!requireUsable) return metadata
    const state = metadata.KeyState ?? (metadata.Enabled === false ? 'Disabled' : 'Enabled')
    if (state === 'PendingDeletion' || state === 'PendingReplicaDeletion') {
      const when = metadata.DeletionDate ? ` on ${metadata.DeletionDate.toISOString()}` : ''
      throw unavailable(ref, 'deleted', use, {
        what: `is pending deletion${when}`,
        detail: `AWS KMS KeyState ${state}`,
      })
    }
    if (state !== 'Enabled') {
      throw unavailable(ref, 'disabled', use, { detail: `AWS KMS KeyState ${state}` })
    }
    const spec = metadata.KeySpec ?? 'SYMMETRIC_DEFAULT'
    const usage = metadata.KeyUsage ?? 'ENCRYPT_DECRYPT'
    if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT') {
      throw unavailable(ref, 'kms-error', use, {
        detail: `not a symmetric encryption key: KeySpec ${spec}, KeyUsage ${usage}`,
      })
    }
    return metadata
  }

  /** GenerateDataKey (AES_256) under an enabled AWS KMS key. */
  private async generateAwsDataKey(
    ref: string,
  ): Promise<{ keyArn: string; dataKey: Buffer; blob: Buffer }> {
    const metadata = await this.describeAwsKey(ref, 'encrypt', true)
    const kms = this.kmsFor(ref, 'encrypt')
    try {
      const out = await kms.send(
        new GenerateDataKeyCommand({
          KeyId: ref,
          KeySpec: 'AES_256',
          EncryptionContext: ENCRYPTION_CONTEXT,
        }),
      )
      if (out.Plaintext?.length !== 32 || out.CiphertextBlob === undefined) {
        throw new Error('GenerateDataKey returned no 256-bit data key')
      }
      return {
        keyArn: out.KeyId ?? metadata.Arn ?? ref,
        dataKey: Buffer.from(out.Plaintext),
        blob: Buffer.from(out.CiphertextBlob),
      }
    } catch (err) {
      throw kmsFailure(err, ref, 'encrypt')
    }
  }

  /** Decrypt of an AWS KMS data key, after DescribeKey confirmed the key is enabled. */
  private async decryptAwsDataKey(keyArn: string, blob: Buffer): Promise<Buffer> {
    await this.describeAwsKey(keyArn, 'decrypt', true)
    const kms = this.kmsFor(keyArn, 'decrypt')
    let plaintext: Uint8Array | undefined
    try {
      plaintext = (
        await kms.send(
          new DecryptCommand({
            CiphertextBlob: blob,
            KeyId: keyArn,
            EncryptionContext: ENCRYPTION_CONTEXT,
          }),
        )
      ).Plaintext
    } catch (err) {
      throw kmsFailure(err, keyArn, 'decrypt')
    }
    if (plaintext?.length !== 32) {
      throw new SecretUnreadableError('secret cannot be decrypted: AWS KMS returned no data key')
    }
    return Buffer.from(plaintext)
  }
}

/** The public view of a key file. */
function toMetadata(file: KeyFile): KeyMetadata {
  return {
    keyId: file.keyId,
    arn: file.arn,
    description: file.description,
    createdAt: new Date(file.createdAt),
    origin: 'AIRDOCK',
  }
}

/**
 * Maps an AWS KMS error: NotFoundException → `deleted` when decrypting (the key existed when the
 * value was sealed), `not-found` otherwise; DisabledException and KMSInvalidStateException →
 * `disabled`; InvalidCiphertextException and IncorrectKeyException while decrypting →
 * SecretUnreadableError (the value was altered); anything else → `kms-error`.
 */
function kmsFailure(err: unknown, ref: string, use: KeyUse): Error {
  if (err instanceof KeyUnavailableError || err instanceof SecretUnreadableError) return err
  const name = err instanceof Error ? err.name : 'Error'
  const detail = `${name}: ${err instanceof Error ? err.message : String(err)}`
  switch (name) {
    case 'NotFoundException':
      return unavailable(ref, use === 'decrypt' ? 'deleted' : 'not-found', use, {
        detail,
        cause: err,
      })
    case 'DisabledException':
    case 'KMSInvalidStateException':
      return unavailable(ref, 'disabled', use, { detail, cause: err })
    case 'InvalidCiphertextException':
    case 'IncorrectKeyException':
      if (use === 'decrypt') {
        return new SecretUnreadableError(`secret cannot be decrypted: it was altered (${detail})`, {
          cause: err,
        })
      }
      return unavailable(ref, 'kms-error', use, { detail, cause: err })
    default:
      return unavailable(ref, 'kms-error', use, { detail, cause: err })
  }
}
