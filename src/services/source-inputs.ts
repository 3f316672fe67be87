/**
 * Request-time checks of an environment's source bucket, run by the environment service before
 * a CreateEnvironment or UpdateEnvironment is recorded (so a refused request stores nothing):
 * - the bucket exists (MWAA checks the bucket; a folder bucket is the folder
 *   `$AIRDOCK_DATA_DIR/buckets/<name>/`);
 * - each input (plugins.zip, requirements.txt, startup script) that must be checked exists in
 *   the version the spec names;
 * - an input whose `…S3ObjectVersion` is omitted gets the version current now (MWAA's model
 *   makes the version members optional): folder buckets, the file's SHA-256; S3, its VersionId
 *   (the ETag on an unversioned bucket). The resolved version is what the stored spec and
 *   GetEnvironment show, so the environment keeps running that content until an update.
 */
import type { EnvironmentSpec } from '../domain/environment.js'
import { ValidationError } from '../domain/errors.js'
import { ARTIFACTS } from '../domain/validation.js'
import {
  InvalidBucketNameError,
  ObjectNotFoundError,
  parseBucketArn,
  type ObjectStore,
} from '../storage/object-store.js'
import { unreadableVersionMessage } from '../storage/object-versions.js'

/** A member's wire name: `requirementsS3Path` → `RequirementsS3Path`. */
function wireName(field: string): string {
  return field.charAt(0).toUpperCase() + field.slice(1)
}

/** An input's path member, e.g. `requirementsS3Path`. */
export type InputPathField = (typeof ARTIFACTS)[number]['path']

/**
 * Which inputs of a spec to check: `all` (a create, or an update that changes the bucket) or
 * the path members whose input the request names (by its path or its version). An input with a
 * path and no version is always checked: its version has to be resolved.
 */
export type InputsToCheck = 'all' | ReadonlySet<InputPathField>

/**
 * The inputs an update names: those whose path or version is among `changes` (`all` when the
 * update moves the environment to another bucket, whose files all have to be there).
 */
export function inputsNamedBy(changes: Partial<EnvironmentSpec>): InputsToCheck {
  if (changes.sourceBucketArn !== undefined) return 'all'
  return new Set(
    ARTIFACTS.filter((a) => changes[a.path] !== undefined || changes[a.version] !== undefined).map(
      (a) => a.path,
    ),
  )
}

/**
 * Checks `spec`'s bucket and inputs in `store` and fills in omitted object versions.
 * @param spec - a validated spec (after MWAA defaults or the update's merge); not modified
 * @returns `spec` with every `…S3ObjectVersion` of a set `…S3Path` present
 * @throws ValidationError naming the bucket (missing or unreadable), or each input's field, its
 *   S3 path and the version that exists now — every problem of the request together
 */
export async function resolveSourceInputs(
  store: ObjectStore,
  spec: EnvironmentSpec,
  check: InputsToCheck,
): Promise<EnvironmentSpec> {
  let bucket: string
  try {
    bucket = parseBucketArn(spec.sourceBucketArn)
  } catch (err) {
    if (err instanceof InvalidBucketNameError) {
      throw new ValidationError(`${wireName('sourceBucketArn')}: ${err.message}`)
    }
    throw err
  }
  const where = `${wireName('sourceBucketArn')} ${spec.sourceBucketArn}`
  let exists: boolean
  try {
    exists = await store.bucketExists(bucket)
  } catch (err) {
    throw new ValidationError(
      `Bucket ${bucket} (${where}) cannot be read: ${err instanceof Error ? err.message : String(err)}`,
    )
  }
  if (!exists) throw new ValidationError(`Bucket ${bucket} (${where}) does not exist.`)

  const resolved: EnvironmentSpec = { ...spec }
  const problems: string[] = []
  for (const artifact of ARTIFACTS) {
    const key = spec[artifact.path]
    if (key === undefined) continue
    const version = spec[artifact.version]
    if (version !== undefined && check !== 'all' && !check.has(artifact.path)) continue
    try {
      const found = await store.head(bucket, key, version)
      resolved[artifact.version] = version ?? found.version
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err
      const why = await unreadableVersionMessage(store, bucket, key, version)
      problems.push(
        version === undefined
          ? `${wireName(artifact.path)} '${key}' has no version to take as ${wireName(artifact.version)}. ${why}`
          : `${wireName(artifact.version)} '${version}' cannot be used. ${why}`,
      )
    }
  }
  const [only] = problems
  if (problems.length === 1 && only !== undefined) throw new ValidationError(only)
  if (problems.length > 1) {
    const parts = problems.map((problem) => problem.replace(/\.$/, ''))
    throw new ValidationError(`${problems.length} validation errors detected: ${parts.join('; ')}`)
  }
  return resolved
}

/**
 * What is wrong with an environment's DAG source right now, for `airdock status`: the bucket
 * is missing or unreadable, or the `DagS3Path` folder is not there (S3: no key under it).
 * @returns a sentence naming the bucket (and path), or `undefined` when both are there
 */
export async function dagSourceProblem(
  store: ObjectStore,
  spec: Pick<EnvironmentSpec, 'sourceBucketArn' | 'dagS3Path'>,
): Promise<string | undefined> {
  try {
    const bucket = parseBucketArn(spec.sourceBucketArn)
    if (!(await store.bucketExists(bucket))) {
      return `Bucket ${bucket} (SourceBucketArn) does not exist: DAG files are not synced.`
    }
    if (!(await store.prefixExists(bucket, spec.dagS3Path))) {
      return `DagS3Path ${spec.dagS3Path} does not exist in bucket ${bucket}: the environment has no DAG files.`
    }
    return undefined
  } catch (err) {
    return `The DAG source ${spec.sourceBucketArn} cannot be read: ${err instanceof Error ? err.message : String(err)}`
  }
}
