/**
 * In-place Airflow version changes (issue 5 item 7; MWAA reference §10) on real Airflow:
 *
 * - an environment created on Airflow 3.2.1 (with a requirements.txt) runs a DAG;
 * - UpdateEnvironment to 3.3.2 goes UPDATING → CREATING_SNAPSHOT → UPDATING → AVAILABLE: the
 *   DAG run history is kept, new runs use 3.3.2 and the requirements rebuilt on its lock;
 * - a downgrade to 3.2.1 whose Airflow does not come up (its api-server is given an SSL
 *   certificate that does not exist) goes ROLLING_BACK → UPDATE_FAILED: the snapshot is
 *   restored (the schema is 3.3.2's again), 3.3.2 serves, the history is intact;
 * - a runtime patch (3.3.2's lock changes under a restarted control plane) waits for the weekly
 *   maintenance window, then is applied with status MAINTENANCE.
 */
import { appendFile, cp, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { maintenanceSlotOf } from '../../src/domain/maintenance.js'
import {
  queryMetadataDatabase,
  readXcom,
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'
import { environmentClient, microEnvironmentBody } from '../support/mwaa-client.js'

const NAME = 'versions-env'
const BUCKET = 'versions-bucket'
const DAG_ID = 'version_probe'

let t: TestControlPlane
/** A copy of `runtimes/` the control plane reads its locks from (the patch test changes one). */
let locksDir: string
const client = environmentClient(() => t.cp.endpoint, NAME)
const { api, environment, waitForStatus, triggerDagRun, waitForDagRun } = client
const airflow = client.invokeRestApi
const pids = client.componentPids
const describeEnvironment = client.describe

/** Every run of the probe DAG so far: run id → the task's answer. */
const runs = new Map<string, string>()

/** Runs the probe DAG. @returns what its task saw (Airflow and pyjokes versions) */
async function probe(): Promise<string> {
  const runId = await triggerDagRun(DAG_ID)
  expect(await waitForDagRun(DAG_ID, runId)).toBe('success')
  const seen = (await readXcom(t, NAME, DAG_ID, runId, 'probe')) as string
  runs.set(runId, seen)
  return seen
}

/** The Airflow version the api-server reports, once one answers. */
async function servedVersion(): Promise<string> {
  return waitFor(
    'an api-server answers /api/v2/version',
    async () => {
      const r = await airflow('GET', '/version')
      return r.status === 200 ? (r.json.version as string) : undefined
    },
    120_000,
  )
}

/** Every earlier probe run is still there, successful. */
async function expectHistoryKept(): Promise<void> {
  for (const runId of runs.keys()) {
    const r = await airflow('GET', `/dags/${DAG_ID}/dagRuns/${runId}`)
    expect(r.status, runId).toBe(200)
    expect(r.json.state, runId).toBe('success')
  }
}

/** The schema revision of the environment's metadata database. */
async function schemaRevision(): Promise<string> {
  const rows = await queryMetadataDatabase<{ version_num: string }>(
    t,
    NAME,
    'SELECT version_num FROM alembic_version',
  )
  return rows[0]!.version_num
}

/**
 * Records every status GetEnvironment shows until `done` says so.
 * @returns the statuses seen (consecutive repeats collapsed) and the final environment
 */
async function watchStatuses(
  what: string,
  done: (env: any) => boolean | Promise<boolean>,
): Promise<{ statuses: string[]; env: any }> {
  const statuses: string[] = []
  const env = await waitFor(
    what,
    async () => {
      const e = await environment()
      if (statuses.at(-1) !== e.Status) statuses.push(e.Status as string)
      return (await done(e)) ? e : undefined
    },
    600_000,
    100,
  )
  return { statuses, env }
}

/**
 * Sends an update and records every status GetEnvironment shows until one of `until`.
 * @returns the statuses seen (consecutive repeats collapsed), the final environment, seconds
 */
async function updateAndWatch(
  changes: Record<string, unknown>,
  until: string[],
): Promise<{ statuses: string[]; env: any; seconds: number }> {
  const started = performance.now()
  const res = await api('PATCH', `/environments/${NAME}`, changes)
  expect(res.status, JSON.stringify(res.json)).toBe(200)
  const watched = await watchStatuses(`${NAME} ${until.join(' or ')}`, (e) =>
    until.includes(e.Status),
  )
  return { ...watched, seconds: (performance.now() - started) / 1000 }
}

/**
 * The statuses seen equal `flow`, MWAA's sequence for a version change. The first UPDATING (the
 * preparing step) may end before the first poll when the new runtime and its requirements layer
 * are already built; every later status lasts at least a component stop or a start.
 */
function expectStatusFlow(statuses: string[], flow: string[]): void {
  const seen = statuses[0] === flow[0] ? statuses : [flow[0]!, ...statuses]
  expect(seen).toEqual(flow)
}

beforeAll(async () => {
  locksDir = await mkdtemp(path.join(tmpdir(), 'airdock-locks-'))
  await cp(path.join(repoRoot, 'runtimes'), locksDir, { recursive: true })
  t = await startTestControlPlane(await testEnvironmentVariables({ AIRDOCK_LOCKS_DIR: locksDir }))
  await t.cp.objectStore.ensureBucket(BUCKET)
  await t.cp.objectStore.put(
    BUCKET,
    `dags/${DAG_ID}.py`,
    await readFile(path.join(repoRoot, `test/fixtures/versions/${DAG_ID}.py`)),
  )
  const requirements = await t.cp.objectStore.put(BUCKET, 'requirements.txt', 'pyjokes==0.8.3\n')
  const res = await api(
    'PUT',
    `/environments/${NAME}`,
    microEnvironmentBody(BUCKET, {
      AirflowVersion: '3.2.1',
      RequirementsS3Path: 'requirements.txt',
      RequirementsS3ObjectVersion: requirements.version,
    }),
  )
  expect(res.status, JSON.stringify(res.json)).toBe(200)
  await waitForStatus('AVAILABLE')
  await waitFor('version_probe listed', async () => {
    return (await airflow('GET', `/dags/${DAG_ID}`)).status === 200
  })
})

afterAll(async () => {
  await t?.destroy()
  if (locksDir) await rm(locksDir, { recursive: true, force: true })
})

describe('Airflow version changes in place', () => {
  it('runs Airflow 3.2.1 when created with it', async () => {
    expect((await environment()).AirflowVersion).toBe('3.2.1')
    expect(await servedVersion()).toBe('3.2.1')
    expect(await probe()).toBe('airflow 3.2.1 pyjokes 0.8.3')
  })

  it('upgrades to 3.3.2 through a snapshot, keeping the DAG run history', async () => {
    const revisionBefore = await schemaRevision()
    const { statuses, env, seconds } = await updateAndWatch({ AirflowVersion: '3.3.2' }, [
      'AVAILABLE',
      'UPDATE_FAILED',
    ])
    console.log(`version upgrade 3.2.1 → 3.3.2: AVAILABLE in ${seconds.toFixed(1)} s`)
    expectStatusFlow(statuses, ['UPDATING', 'CREATING_SNAPSHOT', 'UPDATING', 'AVAILABLE'])
    expect(env.AirflowVersion).toBe('3.3.2')
    expect(env.LastUpdate.Status).toBe('SUCCESS')
    expect(await schemaRevision()).not.toBe(revisionBefore)
    expect(await servedVersion()).toBe('3.3.2')
    await expectHistoryKept()
    // New runs use 3.3.2, with requirements.txt installed again against 3.3.2's lock.
    expect(await probe()).toBe('airflow 3.3.2 pyjokes 0.8.3')
    // The snapshot is dropped once the new version is up.
    const snapshots = await queryMetadataDatabase<{ datname: string }>(
      t,
      NAME,
      "SELECT datname FROM pg_database WHERE datname LIKE '%_snapshot'",
    )
    expect(snapshots).toEqual([])
  })

  it('rolls a downgrade that does not come up back to the snapshot: UPDATE_FAILED, working, history intact', async () => {
    const revisionBefore = await schemaRevision()
    const { statuses, env, seconds } = await updateAndWatch(
      {
        AirflowVersion: '3.2.1',
        AirflowConfigurationOptions: {
          'api.ssl_cert': '/nonexistent/airdock-cert.pem',
          'api.ssl_key': '/nonexistent/airdock-key.pem',
        },
      },
      ['UPDATE_FAILED', 'AVAILABLE'],
    )
    expectStatusFlow(statuses, [
      'UPDATING',
      'CREATING_SNAPSHOT',
      'UPDATING',
      'ROLLING_BACK',
      'UPDATE_FAILED',
    ])
    console.log(
      `version downgrade 3.3.2 → 3.2.1 rolled back: UPDATE_FAILED in ${seconds.toFixed(1)} s: ${env.LastUpdate.Error?.ErrorMessage}`,
    )
    expect(env.LastUpdate.Status).toBe('FAILED')
    expect(env.LastUpdate.Error.ErrorCode).toBe('VERSION_CHANGE_ROLLED_BACK')
    expect(env.LastUpdate.Error.ErrorMessage).toContain('api-server')
    expect(env.LastUpdate.Error.ErrorMessage).toContain('Rolled back to Airflow 3.3.2')
    // What runs is what ran before: 3.3.2, without the options of the failed update.
    expect(env.AirflowVersion).toBe('3.3.2')
    expect(env.AirflowConfigurationOptions ?? {}).not.toHaveProperty('api.ssl_cert')
    // The downgrade had moved the schema to 3.2.1's; the restored snapshot has 3.3.2's.
    expect(await schemaRevision()).toBe(revisionBefore)
    expect(await servedVersion()).toBe('3.3.2')
    await expectHistoryKept()
    expect(await probe()).toBe('airflow 3.3.2 pyjokes 0.8.3')
    expect((await environment()).Status).toBe('UPDATE_FAILED')
  })

  it("refuses a version change whose requirements conflict with the new version's lock, touching nothing", async () => {
    const pidsBefore = await pids()
    // cadwyn 7.0.0 is what 3.3.2's lock pins; 3.2.1's pins 6.2.2. (A new key: a folder bucket
    // keeps only the latest version of a key, and the running spec names requirements.txt's.)
    const requirements = await t.cp.objectStore.put(
      BUCKET,
      'requirements-cadwyn.txt',
      'pyjokes==0.8.3\ncadwyn==7.0.0\n',
    )
    const { statuses, env } = await updateAndWatch(
      {
        AirflowVersion: '3.2.1',
        RequirementsS3Path: 'requirements-cadwyn.txt',
        RequirementsS3ObjectVersion: requirements.version,
      },
      ['UPDATE_FAILED', 'AVAILABLE'],
    )
    expect(statuses).not.toContain('CREATING_SNAPSHOT')
    expect(statuses.at(-1)).toBe('UPDATE_FAILED')
    expect(env.LastUpdate.Error.ErrorCode).toBe('REQUIREMENTS_INSTALL_FAILED')
    expect(env.LastUpdate.Error.ErrorMessage).toMatch(
      /Airflow 3\.2\.1.*cadwyn==7\.0\.0.*cadwyn==6\.2\.2/,
    )
    expect(env.AirflowVersion).toBe('3.3.2')
    // Nothing was stopped: the same processes serve, on 3.3.2.
    expect(await pids()).toEqual(pidsBefore)
    expect(await servedVersion()).toBe('3.3.2')
  })

  it('applies a runtime patch only in the weekly maintenance window, with status MAINTENANCE', async () => {
    // A window 12 hours away; the update also leaves UPDATE_FAILED.
    const away = maintenanceSlotOf(new Date(Date.now() + 12 * 3600_000))
    expect(
      (await updateAndWatch({ WeeklyMaintenanceWindowStart: away }, ['AVAILABLE'])).env
        .WeeklyMaintenanceWindowStart,
    ).toBe(away)
    const id = (await t.cp.store.get(NAME))!.id
    const runtimeBefore = (await describeEnvironment()).runtime as string
    expect(runtimeBefore).toMatch(/^3\.3\.2-[0-9a-f]{12}$/)
    const pidsBefore = await pids()
    // A runtime patch: 3.3.2's lock changes (here by a comment; in real life a newer pin) and
    // the control plane restarts with it, adopting the running components.
    await t.restart({
      whileStopped: () =>
        appendFile(
          path.join(locksDir, '3.3.2/requirements.lock'),
          '\n# airdock test: a runtime patch\n',
        ),
    })
    const pending = await waitFor('the patch is pending', async () => {
      return (await describeEnvironment()).pendingMaintenance as string | undefined
    })
    expect(pending).toMatch(new RegExp(`^runtime patch ${runtimeBefore} → 3\\.3\\.2-[0-9a-f]{12}$`))
    // Outside the window nothing moves: same processes, same runtime, AVAILABLE.
    await new Promise((r) => setTimeout(r, 5_000))
    expect(await pids()).toEqual(pidsBefore)
    expect(t.cp.driver.specOf(id, 'scheduler-1')!.command).toContain(runtimeBefore)
    const outside = await environment()
    expect(outside.Status, JSON.stringify(outside.LastUpdate)).toBe('AVAILABLE')
    // The window opens now: the patch is applied, MAINTENANCE, then AVAILABLE on the new runtime.
    const res = await api('PATCH', `/environments/${NAME}`, {
      WeeklyMaintenanceWindowStart: maintenanceSlotOf(new Date()),
    })
    expect(res.status, JSON.stringify(res.json)).toBe(200)
    const { statuses } = await watchStatuses('maintenance done', async (e) => {
      return e.Status === 'AVAILABLE' && (await describeEnvironment()).runtime !== runtimeBefore
    })
    expect(statuses).toContain('MAINTENANCE')
    expect(statuses.at(-1)).toBe('AVAILABLE')
    const after = await describeEnvironment()
    expect(pending).toContain(after.runtime)
    expect(after.pendingMaintenance).toBeUndefined()
    expect(t.cp.driver.specOf(id, 'scheduler-1')!.command).toContain(after.runtime)
    expect(await pids()).not.toEqual(pidsBefore)
    await expectHistoryKept()
    expect(await probe()).toBe('airflow 3.3.2 pyjokes 0.8.3')
  })
})
