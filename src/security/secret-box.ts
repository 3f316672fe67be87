/**
 * Envelope encryption for environment secrets (DESIGN.md decision 8): a random 256-bit data
 * key per sealed value encrypts the plaintext with AES-256-GCM, and the master key (a local
 * file, mode 0600, created on first start) encrypts the data key. Sealed values are opaque
 * strings `v1.<wrapped key>.<iv>.<tag>.<ciphertext>` (base64url parts).
 *
 * The key ring with customer keys and AWS KMS (`KmsKey`) is planned on top of this.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'

/** Thrown when a sealed value cannot be opened (wrong or missing master key, tampering). */
export class SecretUnreadableError extends Error {}

const b64 = (b: Buffer): string => b.toString('base64url')

/**
 * AES-256-GCM with a random 96-bit nonce and optional additional data (empty additional data is
 * the same as none, so values sealed without it still open).
 * @returns `[nonce, tag, ciphertext]` as base64url
 */
export function gcmSeal(key: Buffer, plaintext: Buffer, aad = ''): [string, string, string] {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce).setAAD(Buffer.from(aad, 'utf8'))
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return [b64(nonce), b64(cipher.getAuthTag()), b64(body)]
}

/**
 * Reverses {@link gcmSeal}.
 * @param parts - `[nonce, tag, ciphertext]` as base64url
 * @throws Error when there are not 3 parts, or the key or additional data do not match
 */
export function gcmOpen(key: Buffer, parts: readonly string[], aad = ''): Buffer {
  if (parts.length !== 3) throw new Error(`expected 3 parts, got ${parts.length}`)
  const [nonce, tag, body] = parts.map((p) => Buffer.from(p, 'base64url'))
  const decipher = createDecipheriv('aes-256-gcm', key, nonce!).setAAD(Buffer.from(aad, 'utf8'))
  decipher.setAuthTag(tag!)
  return Buffer.concat([decipher.update(body!), decipher.final()])
}

/** Seals and opens secrets under one master key. */
export class SecretBox {
  private constructor(private readonly masterKey: Buffer) {}

  /**
   * Loads the master key from `keyFile`, creating it (32 random bytes, mode 0600) if absent.
   * @throws SecretUnreadableError when the file exists but does not hold a 32-byte key
   */
  static async openOrCreate(keyFile: string): Promise<SecretBox> {
    let key: Buffer
    try {
      key = Buffer.from((await readFile(keyFile, 'utf8')).trim(), 'base64')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      key = randomBytes(32)
      await mkdir(path.dirname(keyFile), { recursive: true })
      await writeFile(keyFile, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' })
    }
    if (key.length !== 32) throw new SecretUnreadableError(`master key ${keyFile} is not 32 bytes`)
    return new SecretBox(key)
  }

  /**
   * Seal/open of strings (e.g. the driver's persisted component specs, which hold secrets).
   * `open` throws SecretUnreadableError like `openJson`.
   */
  stringCodec(): { seal(plaintext: string): string; open(sealed: string): string } {
    return {
      seal: (plaintext) => this.sealJson(plaintext),
      open: (sealed) => this.openJson<string>(sealed),
    }
  }

  /** Encrypts a JSON-serialisable value. @returns the sealed string */
  sealJson(value: unknown): string {
    const dataKey = randomBytes(32)
    const wrapped = gcmSeal(this.masterKey, dataKey)
    const body = gcmSeal(dataKey, Buffer.from(JSON.stringify(value), 'utf8'))
    return ['v1', wrapped.join('~'), ...body].join('.')
  }

  /**
   * Decrypts a value sealed by `sealJson`.
   * @throws SecretUnreadableError when the key does not match or the value was altered
   */
  openJson<T>(sealed: string): T {
    const parts = sealed.split('.')
    const wrapped = parts[1]?.split('~')
    if (parts[0] !== 'v1' || parts.length !== 5 || wrapped?.length !== 3) {
      throw new SecretUnreadableError('sealed secret has an unknown format')
    }
    try {
      const dataKey = gcmOpen(this.masterKey, wrapped)
      return JSON.parse(gcmOpen(dataKey, parts.slice(2)).toString('utf8')) as T
    } catch (err) {
      throw new SecretUnreadableError(
        'secret cannot be decrypted: the master key is missing or does not match',
        { cause: err },
      )
    }
  }
}
