/**
 * The object-store port: the little of S3 that airdock needs to read an environment's source
 * bucket (DAGs, plugins.zip, requirements.txt, startup script). Two adapters implement it
 * (DESIGN.md decision 5): `FsObjectStore` (a bucket is a folder, the default) and `S3ObjectStore`
 * (AWS S3 or any S3-compatible service).
 */

/** One object as a listing or a write reports it. */
export interface ObjectInfo {
  /** The full object key, e.g. `dags/sub/etl.py` (never the bucket name). */
  key: string
  /**
   * A token that identifies this object's current content and that `get` accepts as `version`.
   * Folder buckets: the lowercase hex SHA-256 of the content. S3: the S3 VersionId when `put`
   * wrote to a versioned bucket, otherwise the ETag without quotes (listings always give ETags,
   * so a listed version and a put version of the same content may differ). It changes whenever
   * the content changes.
   */
  version: string
  /** Content length in bytes. */
  sizeBytes: number
}

/**
 * A bucket-oriented object store. Keys are `/`-separated and never start with `/`. Every method
 * throws `BucketNotFoundError` when the bucket does not exist (except `ensureBucket`), and
 * `InvalidObjectKeyError` / `InvalidBucketNameError` for names the adapter cannot represent.
 */
export interface ObjectStore {
  /**
   * Every object under `prefix`, recursively, in key order; pagination is internal. `prefix` is
   * a folder: `dags` and `dags/` both mean `dags/` (so `dagsX/…` never matches); `''` lists the
   * whole bucket. Keys in the result are full keys. A prefix with no objects gives `[]`.
   */
  list(bucket: string, prefix: string): Promise<ObjectInfo[]>
  /**
   * The object's bytes. With `version`, only that version (a value from `list` or `put`) is
   * returned: if the store no longer has it, `ObjectNotFoundError` is thrown — never other content.
   * @throws ObjectNotFoundError - no such key, or no such version of it
   */
  get(bucket: string, key: string, version?: string): Promise<Buffer>
  /** Writes (creates or replaces) an object; strings are stored as UTF-8. Used by tests and the demo. */
  put(bucket: string, key: string, body: Buffer | string): Promise<ObjectInfo>
  /** Removes an object; removing a key that does not exist is not an error (as in S3). */
  delete(bucket: string, key: string): Promise<void>
  /** Creates the bucket unless it exists; idempotent. */
  ensureBucket(bucket: string): Promise<void>
}

/** The key (or the requested version of it) does not exist in the bucket. */
export class ObjectNotFoundError extends Error {
  /**
   * @param bucket - bucket name
   * @param key - object key
   * @param version - the version that was asked for, if any
   */
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly version?: string,
  ) {
    super(
      version === undefined
        ? `Object ${key} not found in bucket ${bucket}`
        : `Unable to read version ${version} of file ${key}`,
    )
    this.name = 'ObjectNotFoundError'
  }
}

/** The bucket does not exist. */
export class BucketNotFoundError extends Error {
  /** @param bucket - bucket name */
  constructor(readonly bucket: string) {
    super(`Bucket ${bucket} does not exist`)
    this.name = 'BucketNotFoundError'
  }
}

/** A key the store refuses (path traversal, NUL, backslash, empty or `.` segments, …). */
export class InvalidObjectKeyError extends Error {
  /**
   * @param key - the refused key
   * @param reason - why, e.g. `contains a '..' segment`
   */
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`Invalid object key ${JSON.stringify(key)}: ${reason}`)
    this.name = 'InvalidObjectKeyError'
  }
}

/** A bucket name or bucket ARN that breaks the S3 naming rules. */
export class InvalidBucketNameError extends Error {
  /**
   * @param value - the refused name or ARN
   * @param reason - what is wrong with it
   */
  constructor(
    readonly value: string,
    reason: string,
  ) {
    super(`Invalid bucket ${JSON.stringify(value)}: ${reason}`)
    this.name = 'InvalidBucketNameError'
  }
}

const bucketNamePattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
const bucketArnPattern = /^arn:aws(-[a-z]+)*:s3:::([^/]*)$/

/**
 * Checks an S3 bucket name (3–63 characters of `a-z 0-9 . -`, starting and ending with a letter
 * or digit, no `..`, not an IP address). Folder buckets rely on this to keep names inside the
 * buckets folder.
 * @throws InvalidBucketNameError
 */
export function assertBucketName(bucket: string): void {
  if (!bucketNamePattern.test(bucket)) {
    throw new InvalidBucketNameError(
      bucket,
      'must be 3-63 characters of a-z, 0-9, "." and "-", starting and ending with a letter or digit',
    )
  }
  if (bucket.includes('..')) throw new InvalidBucketNameError(bucket, 'must not contain ".."')
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new InvalidBucketNameError(bucket, 'must not look like an IP address')
  }
}

/**
 * The bucket name in an S3 bucket ARN: `arn:aws:s3:::my-bucket` → `my-bucket` (any AWS
 * partition, e.g. `arn:aws-cn:s3:::…`). Object ARNs (`…:::bucket/key`) and other services are
 * refused.
 * @throws InvalidBucketNameError - not a bucket ARN, or an invalid bucket name
 */
export function parseBucketArn(arn: string): string {
  const match = bucketArnPattern.exec(arn)
  const bucket = match?.[2]
  if (bucket === undefined) {
    throw new InvalidBucketNameError(arn, 'expected an S3 bucket ARN like arn:aws:s3:::my-bucket')
  }
  assertBucketName(bucket)
  return bucket
}

/**
 * A listing prefix as a folder: `''` stays `''`, anything else gets exactly one trailing `/`
 * (`dags` → `dags/`, `dags/` → `dags/`).
 */
export function normalizePrefix(prefix: string): string {
  if (prefix === '') return ''
  return prefix.endsWith('/') ? prefix : `${prefix}/`
}

/**
 * Why a key cannot be a relative file path inside a folder, or `undefined` when it can. Refused:
 * empty, absolute (leading `/`), trailing `/` (a folder marker), NUL, backslash, and empty, `.`
 * or `..` segments. Such keys are legal in S3 but could escape or alias a local folder.
 */
export function unsafePathReason(relativePath: string): string | undefined {
  if (relativePath === '') return 'is empty'
  if (relativePath.includes('\0')) return 'contains a NUL character'
  if (relativePath.includes('\\')) return 'contains a backslash'
  if (relativePath.startsWith('/')) return 'is an absolute path'
  if (relativePath.endsWith('/')) return 'ends with "/" (a folder, not a file)'
  for (const segment of relativePath.split('/')) {
    if (segment === '..') return "contains a '..' segment"
    if (segment === '.') return "contains a '.' segment"
    if (segment === '') return 'contains an empty segment ("//")'
  }
  return undefined
}
