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

/** An object as a listing or `head` reports it: with its last-modified time. */
export interface ListedObject extends ObjectInfo {
  /**
   * When the object was last written: folder buckets, the file's modification time; S3, the
   * object's `LastModified` (second precision).
   */
  lastModified: Date
}

/**
 * A bucket-oriented object store. Keys are `/`-separated and never start with `/`. Every method
 * throws `BucketNotFoundError` when the bucket does not exist (except `ensureBucket` and
 * `bucketExists`), and
 * `InvalidObjectKeyError` / `InvalidBucketNameError` for names the adapter cannot represent.
 */
export interface ObjectStore {
  /**
   * Every object under `prefix`, recursively, in key order; pagination is internal. `prefix` is
   * a folder: `dags` and `dags/` both mean `dags/` (so `dagsX/…` never matches); `''` lists the
   * whole bucket. Keys in the result are full keys. A prefix with no objects gives `[]`.
   */
  list(bucket: string, prefix: string): Promise<ListedObject[]>
  /**
   * One object's current version, size and time, without its bytes — or, with `version`, that
   * version's (the same versions `get` accepts). Folder buckets: the SHA-256 of the file now.
   * S3: HeadObject's VersionId on a versioned bucket, otherwise its ETag (so `head` may name a
   * different token than `list` for the same content; `get` accepts both).
   * @throws ObjectNotFoundError - no such key, or no such version of it
   */
  head(bucket: string, key: string, version?: string): Promise<ListedObject>
  /**
   * Whether the bucket exists (no error for a missing one, unlike the other methods).
   * @throws InvalidBucketNameError for a name the adapter cannot represent; other store errors
   *   (no access, unreachable) propagate
   */
  bucketExists(bucket: string): Promise<boolean>
  /**
   * Whether `prefix` (a folder, as in `list`) is there: folder buckets, the folder exists (it
   * may be empty); S3, which has no folders, at least one key starts with it. `''` is the whole
   * bucket: true.
   */
  prefixExists(bucket: string, prefix: string): Promise<boolean>
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

/** Prefixes S3 reserves: no general purpose bucket name may start with them. */
const RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'] as const
/** Suffixes S3 reserves (access point aliases, Object Lambda, directory and table buckets, …). */
const RESERVED_BUCKET_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'] as const

/**
 * Why `bucket` breaks S3's general purpose bucket naming rules, or `undefined` when it does not
 * (Amazon S3 User Guide, "General purpose bucket naming rules"): 3–63 characters of lowercase
 * letters, digits, `.` and `-`, starting and ending with a letter or digit, no two adjacent
 * periods, not shaped like an IP address, none of the reserved prefixes (`xn--`, `sthree-`,
 * `amzn-s3-demo-`) or suffixes (`-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`, `--table-s3`).
 * Folder buckets rely on these rules to keep names inside the buckets folder.
 */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) {
    return `must be 3-63 characters long (it has ${bucket.length})`
  }
  if (!bucketNamePattern.test(bucket)) {
    return 'must consist of lowercase letters, digits, "." and "-", and start and end with a letter or digit'
  }
  if (bucket.includes('..')) return 'must not contain two adjacent periods ("..")'
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'must not be formatted as an IP address'
  const prefix = RESERVED_BUCKET_PREFIXES.find((p) => bucket.startsWith(p))
  if (prefix !== undefined) return `must not start with "${prefix}" (reserved by S3)`
  const suffix = RESERVED_BUCKET_SUFFIXES.find((s) => bucket.endsWith(s))
  if (suffix !== undefined) return `must not end with "${suffix}" (reserved by S3)`
  return undefined
}

/**
 * Checks an S3 bucket name against {@link bucketNameProblem}'s rules.
 * @throws InvalidBucketNameError naming the rule it breaks
 */
export function assertBucketName(bucket: string): void {
  const problem = bucketNameProblem(bucket)
  if (problem !== undefined) throw new InvalidBucketNameError(bucket, problem)
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
