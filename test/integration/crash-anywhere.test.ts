/**
 * Crash anywhere (DESIGN.md decision 14, issue 13): for each failpoint of CreateEnvironment and
 * DeleteEnvironment, the control plane (a child process running `src/main.ts`, as `npm start`
 * does) is killed at that step with `AIRDOCK_FAILPOINTS=<point>=exit` — as SIGKILL would, no
 * cleanup — then started again without failpoints, and the invariants are checked:
 * - create: the environment ends AVAILABLE with LastUpdate SUCCESS, exactly the components of a
 *   normally created one run (one of each, no orphan left from the killed pass), and a DAG runs;
 * - update (an AirflowConfigurationOptions change, which rolls api-server and scheduler): the
 *   environment ends AVAILABLE with LastUpdate SUCCESS and the new option, every component
 *   restarted onto it exactly once over (one of each), and a DAG runs;
 * - delete: the environment ends DELETED and then not found, and nothing is left: no process,
 *   no metadata database or role, no environment folder, no pid files.
 * All cases share one installation (one data dir, PostgreSQL and runtime).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metadataDatabaseFor } from '../../src/airflow/metadata-database.js'
import { listInstallationProcesses } from '../../src/cli/installation-processes.js'
import { FAILPOINT_NAMES, type FailpointName } from '../../src/lib/failpoints.js'
import { PLATFORM_GROUP } from '../../src/platform/postgres-server.js'
import { SecretBox } from '../../src/security/secret-box.js'
import { repoRoot, testEnvironmentVariables, waitFor } from '../support/control-plane.js'
import { registerCredentials } from '../support/credentials.js'
import { environmentClient, microEnvironmentBody } from '../support/mwaa-client.js'
import { stopAllComponents } from '../../src/cli/process-commands.js'

const BUCKET = 'crash-bucket'
/** One quick task: that DAG runs proves the scheduler, executor and database work. */
const PROBE_DAG = `from datetime import datetime
from airflow.sdk import DAG, task

with DAG("probe", start_date=datetime(2026, 1, 1), schedule=None, catchup=False):
    @task
    def hello():
        return "hello"

    hello()
`
const CREATE_POINTS = FAILPOINT_NAMES.filter((n) => n.startsWith('create.'))
const DELETE_POINTS = FAILPOINT_NAMES.filter((n) => n.startsWith('delete.'))
const UPDATE_POINTS = FAILPOINT_NAMES.filter((n) => n.startsWith('update.'))

let variables: Record<string, string>
let dataDir: string
let endpoint: string
let child: ChildProcess | undefined

/** Starts the control plane (optionally with one failpoint) and waits until its API answers. */
async function startControlPlane(failpoint?: FailpointName): Promise<ChildProcess> {
  const started = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')], {
    cwd: repoRoot,
    env: { ...variables, ...(failpoint ? { AIRDOCK_FAILPOINTS: `${failpoint}=exit` } : {}) },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  child = started
  await waitFor(
    'the API',
    async () => {
      if (started.exitCode !== null || started.signalCode !== null) {
        throw new Error(`control plane ended (${started.exitCode ?? started.signalCode})`)
      }
      const res = await fetch(`${endpoint}/healthz`).catch(() => undefined)
      return res?.status === 200
    },
    180_000,
    250,
  )
  return started
}

/** Stops the running control plane (SIGTERM) and starts one that dies at `point`. */
async function restartWithFailpoint(point: FailpointName): Promise<ChildProcess> {
  child!.kill('SIGTERM')
  await ended(child!, 'the control plane to stop')
  return startControlPlane(point)
}

/** Waits until `proc` ends; @returns the signal that ended it. */
async function ended(proc: ChildProcess, what: string): Promise<string | null> {
  await waitFor(what, () => proc.exitCode !== null || proc.signalCode !== null, 600_000, 200)
  return proc.signalCode
}

/** The environments' driver groups that have pid files (every group but the platform's). */
async function environmentGroups(): Promise<string[]> {
  const groups = await readdir(path.join(dataDir, 'run')).catch(() => [] as string[])
  return groups.filter((g) => g !== PLATFORM_GROUP)
}

/** Runs `sql` on the embedded PostgreSQL as its superuser. */
async function adminQuery(sql: string, params: unknown[]): Promise<unknown[]> {
  const box = await SecretBox.openOrCreate(path.join(dataDir, 'master.key'))
  const password = box.openJson<string>(
    await readFile(path.join(dataDir, 'postgres', 'superuser'), 'utf8'),
  )
  const client = new pg.Client({
    host: '127.0.0.1',
    port: Number(variables.AIRDOCK_POSTGRES_PORT),
    user: 'postgres',
    password,
    database: 'postgres',
  })
  await client.connect()
  try {
    return (await client.query(sql, params)).rows
  } finally {
    await client.end()
  }
}

/** Component name → pid of the running processes of `group`. */
async function processesOf(group: string): Promise<Map<string, number | undefined>> {
  const listing = await listInstallationProcesses(dataDir)
  return new Map(listing.components.filter((c) => c.group === group).map((c) => [c.name, c.pid]))
}

beforeAll(async () => {
  variables = await testEnvironmentVariables()
  dataDir = variables.AIRDOCK_DATA_DIR!
  endpoint = `http://127.0.0.1:${variables.AIRDOCK_PORT}`
  const dags = path.join(dataDir, 'buckets', BUCKET, 'dags')
  await mkdir(dags, { recursive: true })
  await writeFile(path.join(dags, 'probe.py'), PROBE_DAG)
  await startControlPlane()
  registerCredentials(endpoint, dataDir)
}, 300_000)

afterAll(async () => {
  child?.kill('SIGTERM')
  if (child) await ended(child, 'the control plane to stop')
  await stopAllComponents(dataDir)
}, 300_000)

describe('a control plane killed at any step of CreateEnvironment', () => {
  let expected: string[]

  beforeAll(async () => {
    // What a normally created environment runs.
    const base = environmentClient(() => endpoint, 'base')
    expect((await base.api('PUT', '/environments/base', microEnvironmentBody(BUCKET))).status).toBe(
      200,
    )
    await base.waitForStatus('AVAILABLE', 600_000)
    expected = Object.keys(await base.componentPids()).sort()
    expect(expected.length).toBeGreaterThan(3)
    await base.api('DELETE', '/environments/base')
    await waitFor('base deleted', async () => (await base.environment()) === undefined, 120_000)
  }, 900_000)

  for (const [i, point] of CREATE_POINTS.entries()) {
    it(`resumes after a crash at ${point}: AVAILABLE, one of each component, a DAG runs`, async () => {
      const crashing = await restartWithFailpoint(point)
      const name = `crash-${i}`
      const client = environmentClient(() => endpoint, name)
      expect(
        (await client.api('PUT', `/environments/${name}`, microEnvironmentBody(BUCKET))).status,
      ).toBe(200)
      expect(await ended(crashing, `the crash at ${point}`)).toBe('SIGKILL')
      await startControlPlane()
      const env = await client.waitForStatus('AVAILABLE', 600_000)
      expect(env.LastUpdate.Status).toBe('SUCCESS')
      const groups = await environmentGroups()
      expect(groups).toHaveLength(1)
      const running = await processesOf(groups[0]!)
      expect([...running.keys()].sort()).toEqual(expected)
      expect([...running.values()].every((pid) => pid !== undefined)).toBe(true)
      expect(Object.keys(await client.componentPids()).sort()).toEqual(expected)
      await waitFor(
        'the DAG',
        async () => (await client.invokeRestApi('GET', '/dags/probe')).status === 200,
      )
      const runId = await client.triggerDagRun('probe')
      expect(await client.waitForDagRun('probe', runId, 300_000)).toBe('success')
      await client.api('DELETE', `/environments/${name}`)
      await waitFor(
        `${name} deleted`,
        async () => (await client.environment()) === undefined,
        120_000,
      )
    }, 1_200_000)
  }
})

describe('a control plane killed at any step of UpdateEnvironment', () => {
  const name = 'updated'
  const client = environmentClient(() => endpoint, name)
  let expected: string[]

  beforeAll(async () => {
    expect(
      (await client.api('PUT', `/environments/${name}`, microEnvironmentBody(BUCKET))).status,
    ).toBe(200)
    await client.waitForStatus('AVAILABLE', 600_000)
    expected = Object.keys(await client.componentPids()).sort()
  }, 900_000)

  afterAll(async () => {
    await client.api('DELETE', `/environments/${name}`)
    await waitFor(
      `${name} deleted`,
      async () => (await client.environment()) === undefined,
      120_000,
    )
  }, 300_000)

  for (const [i, point] of UPDATE_POINTS.entries()) {
    it(`resumes after a crash at ${point}: the update is applied, one of each component`, async () => {
      const before = await client.componentPids()
      const crashing = await restartWithFailpoint(point)
      const retries = String(i + 2)
      const update = await client.api('PATCH', `/environments/${name}`, {
        AirflowConfigurationOptions: { 'core.default_task_retries': retries },
      })
      expect(update.status).toBe(200)
      expect(await ended(crashing, `the crash at ${point}`)).toBe('SIGKILL')
      await startControlPlane()
      const env = await waitFor(
        'the update to converge',
        async () => {
          const e = await client.environment()
          return e?.Status === 'AVAILABLE' && e.LastUpdate?.Status === 'SUCCESS' ? e : undefined
        },
        600_000,
      )
      expect(env.AirflowConfigurationOptions).toEqual({ 'core.default_task_retries': retries })
      const after = await client.componentPids()
      expect(Object.keys(after).sort()).toEqual(expected)
      // The option reaches the scheduler: it was restarted onto the new spec.
      expect(after['scheduler-1']).not.toBe(before['scheduler-1'])
      const groups = await environmentGroups()
      expect(groups).toHaveLength(1)
      expect([...(await processesOf(groups[0]!)).keys()].sort()).toEqual(expected)
      const runId = await client.triggerDagRun('probe')
      expect(await client.waitForDagRun('probe', runId, 300_000)).toBe('success')
    }, 1_200_000)
  }
})

describe('a control plane killed at any step of DeleteEnvironment', () => {
  for (const [i, point] of DELETE_POINTS.entries()) {
    it(`finishes the delete after a crash at ${point}, leaving nothing behind`, async () => {
      const name = `doomed-${i}`
      const client = environmentClient(() => endpoint, name)
      expect(
        (await client.api('PUT', `/environments/${name}`, microEnvironmentBody(BUCKET))).status,
      ).toBe(200)
      await client.waitForStatus('AVAILABLE', 600_000)
      const [group] = await environmentGroups()
      const pids = [...(await processesOf(group!)).values()]
      const crashing = await restartWithFailpoint(point)
      expect((await client.api('DELETE', `/environments/${name}`)).status).toBe(200)
      expect(await ended(crashing, `the crash at ${point}`)).toBe('SIGKILL')
      await startControlPlane()
      await waitFor(`${name} gone`, async () => (await client.environment()) === undefined, 300_000)
      // Nothing is left of it: processes, pid files, database and role, folder.
      for (const pid of pids) {
        expect(existsSync(`/proc/${pid}`) && pid !== undefined).toBe(false)
      }
      expect(await environmentGroups()).toEqual([])
      const db = metadataDatabaseFor(group!)
      expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).toEqual(
        [],
      )
      expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.user])).toEqual([])
      expect(existsSync(path.join(dataDir, 'environments', group!))).toBe(false)
    }, 1_200_000)
  }
})
