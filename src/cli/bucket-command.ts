/**
 * `airdock bucket ls BUCKET [PREFIX]`: the objects of a bucket as the control plane reads them,
 * with the version each `…S3ObjectVersion` can name. It reads the configured object store
 * directly (settings from the environment, as `npm start` reads them) and needs no running
 * control plane: folder buckets under `$AIRDOCK_DATA_DIR/buckets/`, or the S3-compatible service
 * in `AIRDOCK_S3_ENDPOINT`.
 *
 * Output: one object per line, tab-separated: key, version, size in bytes, last-modified time
 * (ISO 8601, UTC). Folder buckets: the version is the file's lowercase hex SHA-256. S3: the
 * listing's ETag, which `…S3ObjectVersion` accepts too (an omitted version is resolved to the
 * VersionId).
 */
import type { Command } from 'commander'
import { loadSettings } from '../config/settings.js'
import { createObjectStore } from '../storage/object-store-factory.js'
import {
  BucketNotFoundError,
  InvalidBucketNameError,
  type ListedObject,
  type ObjectStore,
} from '../storage/object-store.js'

/**
 * One listing line: `key \t version \t sizeBytes \t lastModified (ISO 8601)`. Keys with a tab or
 * a newline (legal in S3) are printed JSON-quoted so every object stays on one line of 4 fields.
 */
export function formatListedObject(object: ListedObject): string {
  const key = /[\t\n\r]/.test(object.key) ? JSON.stringify(object.key) : object.key
  return [key, object.version, String(object.sizeBytes), object.lastModified.toISOString()].join(
    '\t',
  )
}

/**
 * The listing lines of `bucket` under `prefix` (a folder: `dags` = `dags/`; `''` = the whole
 * bucket), in key order.
 * @throws BucketNotFoundError; InvalidBucketNameError for a name S3 does not allow
 */
export async function bucketListing(
  store: Pick<ObjectStore, 'list'>,
  bucket: string,
  prefix = '',
): Promise<string[]> {
  return (await store.list(bucket, prefix)).map(formatListedObject)
}

/** Adds `bucket ls BUCKET [PREFIX]` to `program`. */
export function registerBucketCommands(program: Command): void {
  const bucket = program
    .command('bucket')
    .description("the buckets environments read (folder buckets or AIRDOCK_S3_ENDPOINT's)")
  bucket
    .command('ls')
    .argument('<bucket>', 'bucket name (the NAME of arn:aws:s3:::NAME)')
    .argument('[prefix]', 'only keys under this folder, e.g. dags')
    .description(
      'list objects: key, version (what …S3ObjectVersion names; folder buckets: the SHA-256), size in bytes, last-modified time — tab-separated',
    )
    .action(async (name: string, prefix: string | undefined) => {
      const store = createObjectStore(loadSettings())
      try {
        for (const line of await bucketListing(store, name, prefix ?? '')) console.log(line)
      } catch (err) {
        if (err instanceof BucketNotFoundError || err instanceof InvalidBucketNameError) {
          console.error(`airdock bucket ls: ${err.message}`)
          process.exitCode = 1
          return
        }
        throw err
      }
    })
}
