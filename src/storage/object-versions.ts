/**
 * Messages for an input that cannot be read in the version an environment names. MWAA answers
 * `Unable to read version {version} of file {file}`; airdock adds what exists now, so the user
 * learns the version to name (folder buckets: the file's SHA-256; S3: its VersionId).
 */
import { BucketNotFoundError, ObjectNotFoundError, type ObjectStore } from './object-store.js'

/**
 * Says why `version` of `key` (or `key` itself, without a version) cannot be read from
 * `bucket`, naming the version that exists now, or that the file or bucket does not exist.
 * Looks the object up once (`head`); store errors other than "not found" propagate.
 * @returns one sentence, e.g. `Unable to read version 1a2b of file requirements.txt in bucket
 *   my-bucket: the version that exists now is 9f8e… (\`airdock bucket ls my-bucket\` lists versions).`
 */
export async function unreadableVersionMessage(
  store: Pick<ObjectStore, 'head'>,
  bucket: string,
  key: string,
  version?: string,
): Promise<string> {
  const subject =
    version === undefined
      ? `Unable to read file ${key} in bucket ${bucket}`
      : `Unable to read version ${version} of file ${key} in bucket ${bucket}`
  try {
    const current = await store.head(bucket, key)
    return `${subject}: the version that exists now is ${current.version} (\`airdock bucket ls ${bucket}\` lists versions).`
  } catch (err) {
    if (err instanceof ObjectNotFoundError) {
      return `${subject}: s3://${bucket}/${key} does not exist.`
    }
    if (err instanceof BucketNotFoundError) return `${subject}: bucket ${bucket} does not exist.`
    throw err
  }
}
