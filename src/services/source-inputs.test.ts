import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sampleSpec } from '../../test/support/sample-spec.js'
import { ValidationError } from '../domain/errors.js'
import { FsObjectStore, sha256Hex } from '../storage/fs-object-store.js'
import { dagSourceProblem, inputsNamedBy, resolveSourceInputs } from './source-inputs.js'

const BUCKET = 'source-bucket'
const sha = (text: string) => sha256Hex(Buffer.from(text))

describe('resolveSourceInputs (folder buckets)', () => {
  let root: string
  let store: FsObjectStore
  const spec = (extra: Parameters<typeof sampleSpec>[0] = {}) =>
    sampleSpec({ sourceBucketArn: `arn:aws:s3:::${BUCKET}`, ...extra })
  const messageOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'no error',
      (err: unknown) => {
        expect(err).toBeInstanceOf(ValidationError)
        return (err as Error).message
      },
    )

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'airdock-source-'))
    store = new FsObjectStore({ rootDir: root })
    await store.ensureBucket(BUCKET)
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('fills an omitted version with the SHA-256 of the file now, keeping given ones', async () => {
    await writeFile(join(root, BUCKET, 'requirements.txt'), 'pyjokes==0.8.3\n')
    const plugins = await store.put(BUCKET, 'plugins.zip', 'zip')
    const given = spec({
      requirementsS3Path: 'requirements.txt',
      pluginsS3Path: 'plugins.zip',
      pluginsS3ObjectVersion: plugins.version,
    })
    const resolved = await resolveSourceInputs(store, given, 'all')
    expect(resolved.requirementsS3ObjectVersion).toBe(sha('pyjokes==0.8.3\n'))
    expect(resolved.pluginsS3ObjectVersion).toBe(plugins.version)
    expect(given.requirementsS3ObjectVersion).toBeUndefined() // not modified
  })

  it('refuses a missing bucket, naming it', async () => {
    const message = await messageOf(
      resolveSourceInputs(store, spec({ sourceBucketArn: 'arn:aws:s3:::no-such-bucket' }), 'all'),
    )
    expect(message).toBe(
      'Bucket no-such-bucket (SourceBucketArn arn:aws:s3:::no-such-bucket) does not exist.',
    )
  })

  it('refuses a version that does not exist, naming the one that does', async () => {
    await store.put(BUCKET, 'startup.sh', 'echo hi\n')
    const message = await messageOf(
      resolveSourceInputs(
        store,
        spec({ startupScriptS3Path: 'startup.sh', startupScriptS3ObjectVersion: 'abc' }),
        'all',
      ),
    )
    expect(message).toBe(
      `StartupScriptS3ObjectVersion 'abc' cannot be used. Unable to read version abc of file startup.sh in bucket ${BUCKET}: the version that exists now is ${sha('echo hi\n')} (\`airdock bucket ls ${BUCKET}\` lists versions).`,
    )
  })

  it('refuses a path that does not exist, naming the field and the S3 path, with every problem', async () => {
    const message = await messageOf(
      resolveSourceInputs(
        store,
        spec({
          requirementsS3Path: 'requirements.txt',
          pluginsS3Path: 'plugins.zip',
          pluginsS3ObjectVersion: 'v1',
        }),
        'all',
      ),
    )
    expect(message).toBe(
      '2 validation errors detected: ' +
        "PluginsS3ObjectVersion 'v1' cannot be used. Unable to read version v1 of file plugins.zip in bucket source-bucket: s3://source-bucket/plugins.zip does not exist; " +
        "RequirementsS3Path 'requirements.txt' has no version to take as RequirementsS3ObjectVersion. Unable to read file requirements.txt in bucket source-bucket: s3://source-bucket/requirements.txt does not exist",
    )
  })

  it('checks only the inputs an update names (and every one when the bucket changes)', async () => {
    const current = spec({ requirementsS3Path: 'gone.txt', requirementsS3ObjectVersion: 'old' })
    expect(inputsNamedBy({ maxWorkers: 3 })).toEqual(new Set())
    await expect(
      resolveSourceInputs(store, current, inputsNamedBy({ maxWorkers: 3 })),
    ).resolves.toEqual(current)
    const named = inputsNamedBy({ requirementsS3ObjectVersion: 'old' })
    expect(named).toEqual(new Set(['requirementsS3Path']))
    expect(await messageOf(resolveSourceInputs(store, current, named))).toContain(
      "RequirementsS3ObjectVersion 'old' cannot be used",
    )
    expect(inputsNamedBy({ sourceBucketArn: 'arn:aws:s3:::other-bucket' })).toBe('all')
  })

  it('says what is wrong with the DAG source', async () => {
    expect(await dagSourceProblem(store, spec({ dagS3Path: 'dags' }))).toBe(
      `DagS3Path dags does not exist in bucket ${BUCKET}: the environment has no DAG files.`,
    )
    await store.put(BUCKET, 'dags/a.py', 'a')
    expect(await dagSourceProblem(store, spec({ dagS3Path: 'dags' }))).toBeUndefined()
    expect(
      await dagSourceProblem(store, spec({ sourceBucketArn: 'arn:aws:s3:::gone-bucket' })),
    ).toBe('Bucket gone-bucket (SourceBucketArn) does not exist: DAG files are not synced.')
  })
})
