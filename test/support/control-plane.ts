/**
 * Starts a real control plane for a test file: its own data dir, embedded PostgreSQL and ports,
 * sharing the Airflow runtime that `make setup` built (`.airdock/runtimes`).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { metadataDatabaseFor } from '../../src/airflow/metadata-database.js'
import { loadSettings, type Settings } from '../../src/config/settings.js'
import { startControlPlane, type ControlPlane } from '../../src/control-plane.js'
import { createLogger } from '../../src/observability/logger.js'
import { registerCredentials } from './credentials.js'

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Runtimes shared by every test (built by `make setup`). */
export const sharedRuntimeDir = path.join(repoRoot, '.airdock', 'runtimes')

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Settings variables for a fresh test data dir (ports chosen at random, runtime shared). */
export async function testEnvironmentVariables(
  overrides: Record<string, string> = {},
): Promise<Record<string, string>> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'airdock-test-'))
  await chmod(dataDir, 0o755)
  // Below Linux's ephemeral range (32768+), so no outgoing connection holds a component port.
  const base = 20_000 + Math.floor(Math.random() * 120) * 100
  // The host's variables (PATH, HOME, CA bundles and proxies the installer needs), without any
  // AIRDOCK_* setting of the shell that runs the tests.
  const host = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('AIRDOCK_'),
    ),
  )
  return {
    ...host,
    AIRDOCK_DATA_DIR: dataDir,
    AIRDOCK_PORT: String(await freePort()),
    AIRDOCK_POSTGRES_PORT: String(await freePort()),
    AIRDOCK_COMPONENT_PORT_BASE: String(base),
    AIRDOCK_RUNTIME_DIR: sharedRuntimeDir,
    AIRDOCK_LOG_LEVEL: process.env.AIRDOCK_TEST_LOG_LEVEL ?? 'warn',
    AIRDOCK_DELETED_RETENTION_MS: '3000',
    ...overrides,
  }
}

/** A control plane started in this process. */
export interface TestControlPlane {
  cp: ControlPlane
  settings: Settings
  variables: Record<string, string>
  /**
   * Stops the control plane, then starts a new one on the same data dir. By default every
   * component (and PostgreSQL) keeps running and is adopted; with `stopComponents` everything
   * is stopped first and the new control plane starts it again.
   */
  restart(options?: {
    stopComponents?: boolean
    /** Runs after the old control plane stopped and before the new one starts. */
    whileStopped?: () => Promise<void>
  }): Promise<void>
  /** Stops it, every process it started and removes the data dir. */
  destroy(): Promise<void>
}

/**
 * Starts a control plane in-process.
 * @param options.logFile - write the control plane's log there instead of stdout
 */
export async function startTestControlPlane(
  variables?: Record<string, string>,
  options: { logFile?: string } = {},
): Promise<TestControlPlane> {
  const vars = variables ?? (await testEnvironmentVariables())
  const settings = loadSettings(vars)
  const logger = createLogger(vars.AIRDOCK_LOG_LEVEL ?? 'warn', options.logFile)
  const handle: TestControlPlane = {
    cp: await startControlPlane(settings, logger),
    settings,
    variables: vars,
    async restart(options) {
      await handle.cp.stop({ stopComponents: options?.stopComponents ?? false })
      await options?.whileStopped?.()
      handle.cp = await startControlPlane(settings, logger)
    },
    async destroy() {
      await handle.cp.stop({ stopComponents: true })
      await rm(settings.dataDir, { recursive: true, force: true })
    },
  }
  registerCredentials(handle.cp.endpoint, settings.dataDir)
  return handle
}

/** Runs `npm start`'s entry point as a child process (for restart tests). */
export function spawnControlPlaneProcess(variables: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')], {
    cwd: repoRoot,
    env: variables,
    stdio: ['ignore', 'inherit', 'inherit'],
  })
}

/**
 * Polls `check` until it returns a value other than undefined/false.
 * @throws Error naming `what` and the last value seen when `timeoutMs` passes
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 180_000,
  intervalMs = 1_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
      last = value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`,
      )
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * Runs a query on an environment's metadata database, as the server's superuser.
 * @returns the rows
 * @throws Error when the environment does not exist
 */
export async function queryMetadataDatabase<T extends pg.QueryResultRow>(
  t: TestControlPlane,
  environmentName: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const record = await t.cp.store.get(environmentName)
  if (!record) throw new Error(`no environment ${environmentName}`)
  const url = new URL(t.cp.postgres.adminUrl)
  url.pathname = `/${metadataDatabaseFor(record.id).name}`
  const db = new pg.Client({ connectionString: url.toString() })
  await db.connect()
  try {
    return (await db.query<T>(sql, params)).rows
  } finally {
    await db.end()
  }
}

/**
 * A task's return value, read from the environment's metadata database (InvokeRestApi's
 * 64-character Path limit is too short for the XCom endpoint).
 * @throws Error unless there is exactly one
 */
export async function readXcom(
  t: TestControlPlane,
  environmentName: string,
  dagId: string,
  runId: string,
  taskId: string,
): Promise<unknown> {
  const rows = await queryMetadataDatabase<{ value: unknown }>(
    t,
    environmentName,
    "SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND key = 'return_value'",
    [dagId, runId, taskId],
  )
  if (rows.length !== 1) throw new Error(`XCom ${taskId}: ${rows.length} rows`)
  return rows[0]!.value
}
