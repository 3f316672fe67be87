/**
 * Buckets in AWS S3 or an S3-compatible service (MinIO, moto, …) through `@aws-sdk/client-s3`
 * (DESIGN.md decision 5, "with an S3 endpoint configured").
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import type { BucketLocationConstraint, S3ClientConfig } from '@aws-sdk/client-s3'
import { BucketNotFoundError, ObjectNotFoundError, normalizePrefix } from './object-store.js'
import type { ListedObject, ObjectInfo, ObjectStore } from './object-store.js'

/** Options of `S3ObjectStore`. */
export interface S3ObjectStoreOptions {
  /** Endpoint URL of an S3-compatible service, e.g. `http://127.0.0.1:9000`; omit for AWS S3. */
  endpoint?: string
  /** AWS region, e.g. `us-east-1`. */
  region: string
  /** Static credentials; when either is omitted the SDK's default provider chain is used. */
  accessKeyId?: string
  /** See `accessKeyId`. */
  secretAccessKey?: string
  /** Path-style addressing (`endpoint/bucket/key`); most S3-compatible services need `true`. */
  forcePathStyle: boolean
}

/** An S3 ETag without quotes: 32 hex digits, plus `-N` for multipart uploads. */
const etagPattern = /^[0-9a-f]{32}(-\d+)?$/

/**
 * `ObjectStore` over S3. `list` uses ListObjectsV2 (1000 keys a page) and reports each object's
 * ETag (quotes stripped) as its version — one request per page, no per-object calls. `get` and
 * `head` accept either kind of version: an ETag-shaped value is sent as `If-Match` (a changed
 * object then reads as not found), anything else as `VersionId`. `put` and `head` return the
 * VersionId on a versioned bucket, otherwise the ETag. S3 errors NoSuchKey, NoSuchVersion, 404 and 412 become
 * `ObjectNotFoundError`; NoSuchBucket becomes `BucketNotFoundError`; others propagate as the
 * SDK's `S3ServiceException`.
 */
export class S3ObjectStore implements ObjectStore {
  /** The underlying client (exposed for callers that need S3 operations the port lacks). */
  readonly client: S3Client
  private readonly region: string

  /** @param options - see `S3ObjectStoreOptions` */
  constructor(options: S3ObjectStoreOptions) {
    this.region = options.region
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle,
    }
    if (options.endpoint !== undefined) {
      config.endpoint = options.endpoint
      // Many S3-compatible services reject the SDK's newer default request checksums.
      config.requestChecksumCalculation = 'WHEN_REQUIRED'
      config.responseChecksumValidation = 'WHEN_REQUIRED'
    }
    if (options.accessKeyId !== undefined && options.secretAccessKey !== undefined) {
      config.credentials = {
        accessKeyId: options.accessKeyId,
        secretAccessKey: options.secretAccessKey,
      }
    }
    this.client = new S3Client(config)
  }

  async list(bucket: string, prefix: string): Promise<ListedObject[]> {
    const folder = normalizePrefix(prefix)
    const objects: ListedObject[] = []
    let continuationToken: string | undefined
    do {
      const page = await this.call(bucket, undefined, undefined, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: folder === '' ? undefined : folder,
            ContinuationToken: continuationToken,
          }),
        ),
      )
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue
        objects.push({
          key: object.Key,
          version: stripQuotes(object.ETag ?? ''),
          sizeBytes: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        })
      }
      continuationToken = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (continuationToken !== undefined)
    return objects
  }

  async head(bucket: string, key: string, version?: string): Promise<ListedObject> {
    const response = await this.call(bucket, key, version, () =>
      this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...versionOf(version) })),
    )
    return {
      key,
      version: version ?? response.VersionId ?? stripQuotes(response.ETag ?? ''),
      sizeBytes: response.ContentLength ?? 0,
      lastModified: response.LastModified ?? new Date(0),
    }
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }))
      return true
    } catch (err) {
      if (isNotFound(err)) return false
      throw err
    }
  }

  async prefixExists(bucket: string, prefix: string): Promise<boolean> {
    const folder = normalizePrefix(prefix)
    if (folder === '') {
      if (!(await this.bucketExists(bucket))) throw new BucketNotFoundError(bucket)
      return true
    }
    const page = await this.call(bucket, undefined, undefined, () =>
      this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: folder, MaxKeys: 1 })),
    )
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0
  }

  async get(bucket: string, key: string, version?: string): Promise<Buffer> {
    const response = await this.call(bucket, key, version, () =>
      this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...versionOf(version) })),
    )
    if (response.Body === undefined) return Buffer.alloc(0)
    return Buffer.from(await response.Body.transformToByteArray())
  }

  async put(bucket: string, key: string, body: Buffer | string): Promise<ObjectInfo> {
    const content = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
    const response = await this.call(bucket, key, undefined, () =>
      this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: content })),
    )
    const version = response.VersionId ?? stripQuotes(response.ETag ?? '')
    return { key, version, sizeBytes: content.length }
  }

  async delete(bucket: string, key: string): Promise<void> {
    await this.call(bucket, undefined, undefined, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })),
    )
  }

  /**
   * Creates the bucket unless it exists. A bucket it creates gets versioning enabled, as MWAA
   * requires of source buckets; an existing bucket is left as it is.
   */
  async ensureBucket(bucket: string): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }))
      return
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    try {
      await this.client.send(
        new CreateBucketCommand({
          Bucket: bucket,
          CreateBucketConfiguration:
            this.region === 'us-east-1'
              ? undefined
              : { LocationConstraint: this.region as BucketLocationConstraint },
        }),
      )
    } catch (err) {
      // Created concurrently by another caller: that is the state we wanted.
      if (errorName(err) === 'BucketAlreadyOwnedByYou') return
      throw err
    }
    await this.client.send(
      new PutBucketVersioningCommand({
        Bucket: bucket,
        VersioningConfiguration: { Status: 'Enabled' },
      }),
    )
  }

  /**
   * Runs one S3 call and maps its errors: with a `key`, not-found answers become
   * `ObjectNotFoundError`; NoSuchBucket always becomes `BucketNotFoundError`.
   */
  private async call<T>(
    bucket: string,
    key: string | undefined,
    version: string | undefined,
    send: () => Promise<T>,
  ): Promise<T> {
    try {
      return await send()
    } catch (err) {
      const name = errorName(err)
      if (name === 'NoSuchBucket') throw new BucketNotFoundError(bucket)
      if (key !== undefined) {
        const status = httpStatus(err)
        if (
          name === 'NoSuchKey' ||
          name === 'NoSuchVersion' ||
          name === 'NotFound' ||
          name === 'PreconditionFailed' ||
          status === 404 ||
          status === 412 ||
          // S3 answers a malformed VersionId with 400 InvalidArgument.
          (version !== undefined && name === 'InvalidArgument')
        ) {
          throw new ObjectNotFoundError(bucket, key, version)
        }
      }
      throw err
    }
  }
}

/** How a version is asked for: an ETag-shaped one as `If-Match`, anything else as `VersionId`. */
function versionOf(version: string | undefined): { VersionId?: string; IfMatch?: string } {
  if (version === undefined) return {}
  return etagPattern.test(version) ? { IfMatch: `"${version}"` } : { VersionId: version }
}

function stripQuotes(etag: string): string {
  return etag.replace(/^"|"$/g, '')
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err)
  return name === 'NotFound' || name === 'NoSuchBucket' || httpStatus(err) === 404
}
