import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { sampleSpec } from '../../test/support/sample-spec.js'
import { environmentLayout } from '../airflow/components.js'
import type { Runtime } from '../airflow/runtime-manager.js'
import type { EnvironmentRecord, EnvironmentSpec } from '../domain/environment.js'
import { createLogger } from '../observability/logger.js'
import { FsObjectStore, sha256Hex } from '../storage/fs-object-store.js'
import { ArtifactError, ArtifactPreparer } from './artifacts.js'

/** Paths only: reading the inputs fails before any of them is used. */
const runtime: Runtime = {
  airflowVersion: '3.3.2',
  key: '3.3.2-test',
  dir: '/nonexistent/runtime',
  binDir: '/nonexistent/runtime/bin',
  airflow: '/nonexistent/runtime/bin/airflow',
  python: '/nonexistent/runtime/bin/python',
  lockFile: '/nonexistent/requirements.lock',
}

describe('ArtifactPreparer: inputs missing from the bucket (ARTIFACT_NOT_FOUND)', () => {
  let root: string
  let store: FsObjectStore
  let preparer: ArtifactPreparer

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'airdock-artifacts-'))
    store = new FsObjectStore({ rootDir: join(root, 'buckets') })
    await store.ensureBucket('inputs-bucket')
    preparer = new ArtifactPreparer({
      objectStore: store,
      layersDir: join(root, 'layers'),
      uv: '/nonexistent/uv',
      installerEnv: {},
      requirementsTimeoutMs: 1_000,
      startupScriptTimeoutMs: 1_000,
      logger: createLogger('silent'),
    })
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  async function refusal(spec: Partial<EnvironmentSpec>): Promise<ArtifactError> {
    const record = {
      name: 'env',
      id: 'abc123',
      generation: 1,
      spec: sampleSpec({ sourceBucketArn: 'arn:aws:s3:::inputs-bucket', ...spec }),
    } as EnvironmentRecord
    const error: unknown = await preparer
      .prepare({
        record,
        runtime,
        layout: environmentLayout(join(root, 'environments'), record.id),
        envFor: () => ({}),
        validateImports: false,
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      )
    expect(error).toBeInstanceOf(ArtifactError)
    return error as ArtifactError
  }

  it('names the version that exists now when the named one is gone', async () => {
    const old = await store.put('inputs-bucket', 'requirements.txt', 'pyjokes==0.8.3\n')
    await store.put('inputs-bucket', 'requirements.txt', 'pyjokes==0.6.0\n')
    const error = await refusal({
      requirementsS3Path: 'requirements.txt',
      requirementsS3ObjectVersion: old.version,
    })
    expect(error.code).toBe('ARTIFACT_NOT_FOUND')
    expect(error.message).toBe(
      `Unable to read version ${old.version} of file requirements.txt in bucket inputs-bucket: the version that exists now is ${sha256Hex(Buffer.from('pyjokes==0.6.0\n'))} (\`airdock bucket ls inputs-bucket\` lists versions).`,
    )
  })

  it('says when the file or the bucket does not exist', async () => {
    const missing = await refusal({ pluginsS3Path: 'plugins.zip', pluginsS3ObjectVersion: 'v1' })
    expect(missing.message).toBe(
      'Unable to read version v1 of file plugins.zip in bucket inputs-bucket: s3://inputs-bucket/plugins.zip does not exist.',
    )
    const noBucket = await refusal({
      sourceBucketArn: 'arn:aws:s3:::gone-bucket',
      startupScriptS3Path: 'startup.sh',
      startupScriptS3ObjectVersion: 'v1',
    })
    expect(noBucket).toMatchObject({
      code: 'ARTIFACT_NOT_FOUND',
      message: 'Unable to read version v1 of file startup.sh: bucket gone-bucket does not exist.',
    })
  })
})
