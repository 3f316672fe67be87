/**
 * requirements.txt, plugins.zip and the startup script on real Airflow (issue 5), validated
 * before anything runs with them:
 *
 * - a mw1.micro environment whose DAG uses a PyPI package from requirements.txt, an operator
 *   from plugins.zip and a variable the startup script exported: its DAG run succeeds;
 * - updates that cannot work — an unknown package, a pin that conflicts with Airflow's, a zip
 *   with `../` paths, a plugin that does not import, a startup script that exits non-zero or
 *   sleeps past the limit — each end UPDATE_FAILED naming the culprit, while the environment
 *   keeps running exactly as it was (same processes; a DAG run started before finishes);
 * - a good update afterwards applies;
 * - omitted `…S3ObjectVersion`s (create and update) are the versions current at the request,
 *   shown by GetEnvironment; a missing or invalid bucket, a missing input and a version that does
 *   not exist are refused at the request (naming the version that exists now), storing nothing;
 * - a bucket that disappears later shows in `airdock status` and the environment's DAG sync log.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, rename } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  readXcom,
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'
import { environmentClient, microEnvironmentBody } from '../support/mwaa-client.js'
import { zipOf } from '../support/zip.js'

const NAME = 'inputs-env'
const BUCKET = 'inputs-bucket'
const FIXTURES = path.join(repoRoot, 'test/fixtures/inputs')
/** The startup script limit in this test, in ms (MWAA's is 5 minutes). */
const STARTUP_LIMIT_MS = 10_000

let t: TestControlPlane
const client = environmentClient(() => t.cp.endpoint, NAME)
const { api, environment, waitForStatus } = client
const airflow = client.invokeRestApi
const trigger = client.triggerDagRun
const waitForRun = client.waitForDagRun
const pids = client.componentPids
const xcom = (dagId: string, runId: string, taskId: string) =>
  readXcom(t, NAME, dagId, runId, taskId)

/** Writes a bucket object. @returns its version (what MWAA's `…S3ObjectVersion` names) */
async function put(key: string, body: Buffer | string): Promise<string> {
  return (await t.cp.objectStore.put(BUCKET, key, body)).version
}

/**
 * Writes an input to the bucket.
 * @returns the UpdateEnvironment fields naming it: `<kind>S3Path` and `<kind>S3ObjectVersion`
 */
async function input(
  kind: 'Requirements' | 'Plugins' | 'StartupScript',
  key: string,
  body: Buffer | string,
): Promise<Record<string, string>> {
  return { [`${kind}S3Path`]: key, [`${kind}S3ObjectVersion`]: await put(key, body) }
}

/** plugins.zip with the `airdock_hello` operator package, and `extra` files. */
async function helloPlugins(extra: Record<string, string> = {}): Promise<Buffer> {
  return zipOf({
    'airdock_hello/__init__.py': await fixture('airdock_hello/__init__.py'),
    'airdock_hello/operators.py': await fixture('airdock_hello/operators.py'),
    ...extra,
  })
}

async function fixture(name: string): Promise<string> {
  return readFile(path.join(FIXTURES, name), 'utf8')
}

/** The environment's working inputs: every failing update changes one of them only. */
const good: Record<string, string> = {}

/**
 * Sends an update (on top of the working inputs) and waits for UPDATE_FAILED.
 * @returns LastUpdate.Error and the seconds from the request to UPDATE_FAILED
 */
async function failingUpdate(
  changes: Record<string, unknown>,
): Promise<{ code: string; message: string; seconds: number }> {
  const started = performance.now()
  const res = await api('PATCH', `/environments/${NAME}`, { ...good, ...changes })
  expect(res.status, JSON.stringify(res.json)).toBe(200)
  const env = await waitForStatus('UPDATE_FAILED', 240_000)
  return {
    code: env.LastUpdate.Error.ErrorCode as string,
    message: env.LastUpdate.Error.ErrorMessage as string,
    seconds: (performance.now() - started) / 1000,
  }
}

beforeAll(async () => {
  t = await startTestControlPlane(
    await testEnvironmentVariables({ AIRDOCK_STARTUP_SCRIPT_TIMEOUT_MS: String(STARTUP_LIMIT_MS) }),
  )
  await t.cp.objectStore.ensureBucket(BUCKET)
  await put('dags/inputs_dag.py', await fixture('inputs_dag.py'))
  await put(
    'dags/slow_pipeline.py',
    await readFile(path.join(repoRoot, 'test/fixtures/dags/slow_pipeline.py')),
  )
  Object.assign(
    good,
    await input('Requirements', 'requirements.txt', 'pyjokes==0.8.3\n'),
    await input('Plugins', 'plugins.zip', await helloPlugins()),
    await input(
      'StartupScript',
      'startup.sh',
      [
        '#!/bin/sh',
        'echo "startup script for $MWAA_AIRFLOW_COMPONENT"',
        'export STARTUP_GREETING="hi from the startup script ($MWAA_AIRFLOW_COMPONENT)"',
        '# Reserved: restored after the script.',
        'export AIRFLOW__CORE__EXECUTOR=SequentialExecutor',
        '',
      ].join('\n'),
    ),
  )
  // Paths only: the versions current now are resolved and recorded (MWAA's model makes them optional).
  const paths = Object.fromEntries(Object.entries(good).filter(([k]) => k.endsWith('S3Path')))
  const res = await api('PUT', `/environments/${NAME}`, microEnvironmentBody(BUCKET, paths))
  expect(res.status, JSON.stringify(res.json)).toBe(200)
  await waitForStatus('AVAILABLE')
})

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/** A request refused with a ValidationException (MWAA's only 400). @returns its message */
async function refused(method: string, pathname: string, body: unknown): Promise<string> {
  const res = await api(method, pathname, body)
  expect(res.status, JSON.stringify(res.json)).toBe(400)
  return res.json.message as string
}

afterAll(async () => {
  await t?.destroy()
})

describe('requirements.txt, plugins.zip and the startup script', () => {
  it('runs a DAG that uses a requirements package, a plugin operator and a startup export', async () => {
    await waitFor(
      'inputs_dag listed',
      async () => (await airflow('GET', '/dags/inputs_dag')).status === 200,
      60_000,
    )
    const runId = await trigger('inputs_dag')
    expect(await waitForRun('inputs_dag', runId)).toBe('success')
    expect(await xcom('inputs_dag', runId, 'joke')).toMatch(/^pyjokes 0\.8\.3: /)
    expect(await xcom('inputs_dag', runId, 'greeting')).toBe(
      'hi from the startup script (scheduler)',
    )
    expect(await xcom('inputs_dag', runId, 'hello')).toBe('hello from the plugin, airdock')
    // The script's output is kept, per component kind; the reserved variable was restored.
    const home = path.join(t.settings.dataDir, 'environments', (await t.cp.store.get(NAME))!.id)
    expect(await readFile(path.join(home, 'logs/startup-script/webserver.log'), 'utf8')).toContain(
      'startup script for webserver',
    )
    const id = (await t.cp.store.get(NAME))!.id
    const scheduler = t.cp.driver.specOf(id, 'scheduler-1')!
    expect(scheduler.env.AIRFLOW__CORE__EXECUTOR).toBe('LocalExecutor')
    expect(scheduler.env.STARTUP_GREETING).toBe('hi from the startup script (scheduler)')
    expect(t.cp.driver.specOf(id, 'api-server-1')!.env.STARTUP_GREETING).toBe(
      'hi from the startup script (webserver)',
    )
  })

  it('records the versions current at create for omitted …S3ObjectVersions', async () => {
    const env = await environment()
    // Folder buckets: an object's version is the SHA-256 of the file.
    expect(env.RequirementsS3ObjectVersion).toBe(sha256('pyjokes==0.8.3\n'))
    expect(env.RequirementsS3ObjectVersion).toBe(good.RequirementsS3ObjectVersion)
    expect(env.PluginsS3ObjectVersion).toBe(good.PluginsS3ObjectVersion)
    expect(env.StartupScriptS3ObjectVersion).toBe(good.StartupScriptS3ObjectVersion)
    expect((await t.cp.store.get(NAME))!.spec.requirementsS3ObjectVersion).toBe(
      good.RequirementsS3ObjectVersion,
    )
  })

  it('refuses a missing or invalid bucket, a missing input and a version that does not exist, storing nothing', async () => {
    const body = (bucket: string, extra: Record<string, unknown> = {}) =>
      microEnvironmentBody(bucket, extra)
    expect(await refused('PUT', '/environments/other-env', body('no-such-bucket'))).toBe(
      'Bucket no-such-bucket (SourceBucketArn arn:aws:s3:::no-such-bucket) does not exist.',
    )
    expect(await refused('PUT', '/environments/other-env', body('b'))).toContain(
      "SourceBucketArn 'arn:aws:s3:::b' does not name a valid S3 bucket",
    )
    expect(
      await refused(
        'PUT',
        '/environments/other-env',
        body(BUCKET, { RequirementsS3Path: 'no-such-requirements.txt' }),
      ),
    ).toContain(
      `RequirementsS3Path 'no-such-requirements.txt' has no version to take as RequirementsS3ObjectVersion. Unable to read file no-such-requirements.txt in bucket ${BUCKET}: s3://${BUCKET}/no-such-requirements.txt does not exist.`,
    )
    expect((await api('GET', '/environments/other-env')).status).toBe(404)
    expect((await api('GET', '/environments')).json.Environments).toEqual([NAME])

    const before = await t.cp.store.get(NAME)
    expect(
      await refused('PATCH', `/environments/${NAME}`, {
        SourceBucketArn: 'arn:aws:s3:::no-such-bucket',
      }),
    ).toBe('Bucket no-such-bucket (SourceBucketArn arn:aws:s3:::no-such-bucket) does not exist.')
    expect(
      await refused('PATCH', `/environments/${NAME}`, { SourceBucketArn: 'arn:aws:s3:::b' }),
    ).toContain("'b' must be 3-63 characters long")
    // The error names the version that exists now (a folder bucket's: the file's SHA-256).
    expect(
      await refused('PATCH', `/environments/${NAME}`, {
        RequirementsS3ObjectVersion: 'deadbeef',
        MaxWorkers: 1,
      }),
    ).toBe(
      `RequirementsS3ObjectVersion 'deadbeef' cannot be used. Unable to read version deadbeef of file requirements.txt in bucket ${BUCKET}: the version that exists now is ${good.RequirementsS3ObjectVersion} (\`airdock bucket ls ${BUCKET}\` lists versions).`,
    )
    const after = await t.cp.store.get(NAME)
    expect(after!.generation).toBe(before!.generation)
    expect(after!.spec).toEqual(before!.spec)
    expect((await environment()).Status).toBe('AVAILABLE')
  })

  it('refuses a requirements.txt that cannot install within seconds, while a running DAG run finishes', async () => {
    const before = await pids()
    const runId = await trigger('slow_pipeline')
    await waitFor(
      'slow_pipeline running',
      async () =>
        (await airflow('GET', `/dags/slow_pipeline/dagRuns/${runId}/taskInstances/wait`)).json
          ?.state === 'running',
      60_000,
    )
    // The same update also changes an option: nothing of a refused update is applied.
    const failed = await failingUpdate({
      ...(await input(
        'Requirements',
        'requirements-bad.txt',
        'no-such-package-airdock-xyz==1.0\n',
      )),
      AirflowConfigurationOptions: { 'core.default_task_retries': '3' },
    })
    console.log(`bad requirements.txt → UPDATE_FAILED in ${failed.seconds.toFixed(1)} s`)
    expect(failed.code).toBe('REQUIREMENTS_INSTALL_FAILED')
    expect(failed.message).toContain('no-such-package-airdock-xyz')
    expect(await pids()).toEqual(before)
    expect(await waitForRun('slow_pipeline', runId)).toBe('success')
    expect(await pids()).toEqual(before)
    const id = (await t.cp.store.get(NAME))!.id
    expect(t.cp.driver.specOf(id, 'scheduler-1')!.env.AIRFLOW__CORE__DEFAULT_TASK_RETRIES).toBe(
      undefined,
    )
    expect((await environment()).AirflowConfigurationOptions ?? {}).toEqual({})
  })

  it("refuses a pin that conflicts with Airflow's, naming the package and both versions", async () => {
    const failed = await failingUpdate(
      await input('Requirements', 'requirements-conflict.txt', 'pendulum==2.1.2\n'),
    )
    expect(failed.code).toBe('REQUIREMENTS_INSTALL_FAILED')
    expect(failed.message).toContain('pendulum==2.1.2')
    expect(failed.message).toMatch(/pendulum==3\.\d+\.\d+/)
    // As MWAA rolls a failed update back, GetEnvironment shows what still runs.
    const env = await environment()
    expect(env.Status).toBe('UPDATE_FAILED')
    expect(env.RequirementsS3Path).toBe('requirements.txt')
    expect(env.RequirementsS3ObjectVersion).toBe(good.RequirementsS3ObjectVersion)
    // A control-plane restart neither retries the refused inputs nor restarts anything.
    const before = await pids()
    await t.restart()
    await new Promise((r) => setTimeout(r, 8_000))
    expect((await environment()).Status).toBe('UPDATE_FAILED')
    expect(await pids()).toEqual(before)
  })

  it('refuses a plugins.zip with ../ paths without writing anything, and a plugin that does not import', async () => {
    const home = path.join(t.settings.dataDir, 'environments', (await t.cp.store.get(NAME))!.id)
    const slip = await failingUpdate(
      await input(
        'Plugins',
        'plugins-evil.zip',
        zipOf({ 'ok.py': '', '../../evil.py': 'print("escaped")' }),
      ),
    )
    expect(slip.code).toBe('PLUGINS_INVALID')
    expect(slip.message).toContain("'../../evil.py'")
    expect(existsSync(path.join(home, '..', 'evil.py'))).toBe(false)
    expect(existsSync(path.join(t.settings.dataDir, 'environments', 'evil.py'))).toBe(false)

    const failed = await failingUpdate(
      await input(
        'Plugins',
        'plugins-broken.zip',
        await helloPlugins({ 'broken_plugin.py': await fixture('broken_plugin.py') }),
      ),
    )
    expect(failed.code).toBe('PLUGIN_IMPORT_FAILED')
    expect(failed.message).toContain('broken_plugin.py')
    expect(failed.message).toContain('module_that_does_not_exist')
  })

  it('refuses a startup script that exits non-zero or runs past the limit', async () => {
    const exited = await failingUpdate(
      await input('StartupScript', 'startup-exit.sh', 'echo "about to fail"\nexit 3\n'),
    )
    expect(exited.code).toBe('STARTUP_SCRIPT_FAILED')
    expect(exited.message).toContain('exited with code 3')
    expect(exited.message).toContain('about to fail')

    const slept = await failingUpdate(
      await input('StartupScript', 'startup-sleep.sh', 'echo sleeping\nsleep 600\n'),
    )
    expect(slept.code).toBe('STARTUP_SCRIPT_FAILED')
    expect(slept.message).toContain(`did not finish within ${STARTUP_LIMIT_MS / 1000} s`)
    expect(slept.seconds).toBeLessThan(120)
  })

  it('applies a good update after the failed ones, and the DAG still runs', async () => {
    // Only what changes: the update starts from what runs, not from the refused inputs.
    // A path without its version: the version current at the request is applied.
    await put('requirements-2.txt', 'pyjokes==0.6.0\n')
    const res = await api('PATCH', `/environments/${NAME}`, {
      RequirementsS3Path: 'requirements-2.txt',
      ...(await input(
        'StartupScript',
        'startup-2.sh',
        'export STARTUP_GREETING="second script ($MWAA_AIRFLOW_COMPONENT)"\n',
      )),
    })
    expect(res.status, JSON.stringify(res.json)).toBe(200)
    await waitForStatus('AVAILABLE', 240_000)
    expect((await environment()).LastUpdate.Status).toBe('SUCCESS')
    expect((await environment()).RequirementsS3ObjectVersion).toBe(sha256('pyjokes==0.6.0\n'))
    const runId = await trigger('inputs_dag')
    expect(await waitForRun('inputs_dag', runId)).toBe('success')
    expect(await xcom('inputs_dag', runId, 'joke')).toMatch(/^pyjokes 0\.6\.0: /)
    expect(await xcom('inputs_dag', runId, 'greeting')).toBe('second script (scheduler)')
  })

  it('checks new inputs without applying them (airdock validate)', async () => {
    const before = await t.cp.store.get(NAME)
    const refused = await api(
      'POST',
      `/airdock/v1/environments/${NAME}/validate`,
      await input(
        'Requirements',
        'requirements-validate.txt',
        'no-such-package-airdock-validate==1.0\n',
      ),
    )
    expect(refused.status).toBe(200)
    expect(refused.json).toMatchObject({
      Valid: false,
      ErrorCode: 'REQUIREMENTS_INSTALL_FAILED',
      ErrorMessage: expect.stringContaining('no-such-package-airdock-validate'),
    })
    const fine = await api('POST', `/airdock/v1/environments/${NAME}/validate`, {
      StartupScriptS3Path: 'startup.sh',
      StartupScriptS3ObjectVersion: good.StartupScriptS3ObjectVersion,
    })
    expect(fine.json).toMatchObject({ Valid: true })
    // Nothing was recorded or applied.
    const after = await t.cp.store.get(NAME)
    expect(after!.generation).toBe(before!.generation)
    expect(after!.spec).toEqual(before!.spec)
    expect((await environment()).Status).toBe('AVAILABLE')
  })

  it('shows a bucket that disappears in airdock status and in the DAG sync log, and its return', async () => {
    const bucketDir = path.join(t.settings.dataDir, 'buckets', BUCKET)
    const home = path.join(t.settings.dataDir, 'environments', (await t.cp.store.get(NAME))!.id)
    const syncLog = path.join(home, 'logs', 'components', 'dag-sync.log')
    const describeMessage = async () => ((await client.describe()).message ?? '') as string
    expect(await describeMessage()).not.toContain('does not exist')
    await rename(bucketDir, `${bucketDir}-away`)
    try {
      expect(await describeMessage()).toContain(
        `Bucket ${BUCKET} (SourceBucketArn) does not exist: DAG files are not synced`,
      )
      await waitFor(
        'the DAG sync log names the missing bucket',
        async () =>
          (await readFile(syncLog, 'utf8').catch(() => '')).includes(
            `BUCKET_NOT_FOUND: Bucket ${BUCKET} (SourceBucketArn) does not exist`,
          ),
        30_000,
      )
      // The DAGs synced before stay in place.
      expect(existsSync(path.join(home, 'dags', 'inputs_dag.py'))).toBe(true)
      // GetEnvironment: UNAVAILABLE, and LastUpdate.Error names the bucket.
      const unavailable = await client.waitForStatus('UNAVAILABLE', 60_000)
      expect(unavailable.LastUpdate.Error).toMatchObject({
        ErrorCode: 'BUCKET_NOT_FOUND',
        ErrorMessage: expect.stringContaining(`Bucket ${BUCKET} (SourceBucketArn) does not exist`),
      })
    } finally {
      await rename(`${bucketDir}-away`, bucketDir)
    }
    await client.waitForStatus('AVAILABLE', 60_000)
    expect(await describeMessage()).not.toContain('does not exist')
    await waitFor(
      'the DAG sync log records the return',
      async () => (await readFile(syncLog, 'utf8')).includes('recovered: s3://inputs-bucket/dags/'),
      30_000,
    )
  })
})
