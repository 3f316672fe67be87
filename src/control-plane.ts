/**
 * Wires the control plane together: the only module that constructs adapters (driver, stores,
 * object store, PostgreSQL) and hands them to the core. `main.ts` runs it in the foreground;
 * tests start it in-process.
 */
import { chmod, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { RuntimeManager } from './airflow/runtime-manager.js'
import { createApiApp } from './api/app.js'
import { listenForApi, type ApiListener } from './api/listener.js'
import { Autoscaler } from './autoscaler/autoscaler.js'
import { registerExtensions } from './api/extensions.js'
import type { Settings } from './config/settings.js'
import { findExecutable } from './lib/find-executable.js'
import { enabledFailpoints, enableFailpoints, parseFailpoints } from './lib/failpoints.js'
import { createLogger, type Logger } from './observability/logger.js'
import { acquireControlPlaneLock, type ControlPlaneLock } from './platform/control-plane-pid.js'
import {
  choosePort,
  readInstallationState,
  recordInstallationState,
  writeAwsConfigFile,
} from './platform/installation.js'
import {
  ensurePostgresServer,
  PLATFORM_GROUP,
  externalPostgres,
  type PostgresServer,
} from './platform/postgres-server.js'
import { ArtifactPreparer } from './reconciler/artifacts.js'
import { EnvironmentReconciler } from './reconciler/environment-reconciler.js'
import { LocalDriver } from './runtime/local/local-driver.js'
import { IdentityService } from './iam/identity-service.js'
import { LoginTokens } from './iam/login-tokens.js'
import { KeyRing } from './security/key-ring.js'
import { SecretBox } from './security/secret-box.js'
import { AccessStore } from './store/access-store.js'
import { EnvironmentService } from './services/environment-service.js'
import { EnvironmentStore } from './store/environment-store.js'
import type { ObjectStore } from './storage/object-store.js'
import { createObjectStore } from './storage/object-store-factory.js'

/** A running control plane. */
export interface ControlPlane {
  settings: Settings
  /** `http://<AIRDOCK_HOST, 127.0.0.1 for a wildcard>:<port>`: the MWAA endpoint. */
  endpoint: string
  service: EnvironmentService
  reconciler: EnvironmentReconciler
  autoscaler: Autoscaler
  store: EnvironmentStore
  driver: LocalDriver
  postgres: PostgresServer
  objectStore: ObjectStore
  runtimes: RuntimeManager
  logger: Logger
  /**
   * Stops the control plane.
   * @param options.stopComponents - also stop every environment's processes and PostgreSQL
   *   (default: `settings.stopOnExit`); otherwise they keep running and are adopted next start
   */
  stop(options?: { stopComponents?: boolean }): Promise<void>
}

/** Thrown when a required outside program (redis-server, uv) is missing. */
export class MissingProgramError extends Error {}

/**
 * Starts the control plane: claims the data dir (pid file), binds the MWAA API's port, then
 * PostgreSQL (embedded unless `databaseUrl`), migrations, the reconciler (which adopts running
 * components) and the API application. A failure before the end leaves nothing of its own
 * running: the port is released and the pid file removed (PostgreSQL, once started, stays
 * like every component and is adopted by the next start).
 * @throws ControlPlaneRunningError when another control plane runs for the data dir
 * @throws PortInUseError when the API's or PostgreSQL's port cannot be had
 * @throws MissingProgramError when redis-server or uv is missing
 * @throws FailpointSettingError for an AIRDOCK_FAILPOINTS value naming no failpoint or action
 */
export async function startControlPlane(
  settings: Settings,
  logger?: Logger,
): Promise<ControlPlane> {
  const log = logger ?? createLogger(settings.logLevel)
  // Parsed before anything starts: a bad name or action starts nothing.
  enableFailpoints(parseFailpoints(settings.failpoints))
  if (enabledFailpoints().size > 0) {
    log.warn(
      { failpoints: Object.fromEntries(enabledFailpoints()) },
      'failpoints are set (AIRDOCK_FAILPOINTS): this control plane fails on purpose',
    )
  }
  await mkdir(settings.dataDir, { recursive: true, mode: 0o755 })
  // PostgreSQL runs as the `postgres` user when we are root: it must be able to enter the data dir.
  await chmod(settings.dataDir, 0o755)
  const lock = await acquireControlPlaneLock(settings.dataDir)
  let listener: ApiListener | undefined
  try {
    listener = await listenForApi(settings)
    const bound = { ...settings, port: listener.port, endpoint: listener.endpoint }
    return await assembleControlPlane(bound, log, lock, listener)
  } catch (err) {
    await listener?.close()
    await lock.release()
    throw err
  }
}

/**
 * The port of the embedded PostgreSQL: the one an adopted, running server listens on is ours;
 * otherwise `AIRDOCK_POSTGRES_PORT`, or the recorded / default port, checked free.
 * @throws PortInUseError when an explicit AIRDOCK_POSTGRES_PORT is taken
 */
async function postgresPortFor(settings: Settings, driver: LocalDriver): Promise<number> {
  const running = driver
    .observe(PLATFORM_GROUP)
    .find((s) => s.name === 'postgres' && s.phase !== 'exited' && s.pid !== undefined)
  const args = running ? (driver.specOf(PLATFORM_GROUP, 'postgres')?.args ?? []) : []
  const adoptedPort = args.includes('-p') ? Number(args[args.indexOf('-p') + 1]) : undefined
  const port = await choosePort({
    preferred: settings.postgresPort,
    recorded: (await readInstallationState(settings.dataDir)).postgresPort,
    explicit: settings.postgresPortIsExplicit,
    setting: 'AIRDOCK_POSTGRES_PORT',
    isOurs: (p) => p === adoptedPort,
  })
  if (!settings.postgresPortIsExplicit) {
    await recordInstallationState(settings.dataDir, { postgresPort: port })
  }
  return port
}

/** Everything after the pid file and the API port: see {@link startControlPlane}. */
async function assembleControlPlane(
  settings: Settings,
  log: Logger,
  lock: ControlPlaneLock,
  listener: ApiListener,
): Promise<ControlPlane> {
  const redisServer = findExecutable('redis-server', settings.hostPath)
  if (!redisServer) {
    throw new MissingProgramError('redis-server was not found on PATH; run `make setup`')
  }
  const uv = findExecutable(settings.uv, settings.hostPath)
  if (!uv) throw new MissingProgramError(`${settings.uv} was not found on PATH; run \`make setup\``)

  const masterKeyFile = path.join(settings.dataDir, 'master.key')
  const secretBox = await SecretBox.openOrCreate(masterKeyFile)
  const keyRing = await KeyRing.open({
    dir: path.join(settings.dataDir, 'kms'),
    masterKeyFile,
    region: settings.region,
    accountId: settings.accountId,
    aws: settings.kms,
  })
  const driver = await LocalDriver.open({
    runDir: path.join(settings.dataDir, 'run'),
    logger: log.child({ part: 'driver' }),
    // Component specs hold secrets in their env: their pid files keep them sealed.
    specCodec: secretBox.stringCodec(),
  })
  const postgres = settings.databaseUrl
    ? externalPostgres(settings.databaseUrl)
    : await ensurePostgresServer({
        dir: path.join(settings.dataDir, 'postgres'),
        port: await postgresPortFor(settings, driver),
        driver,
        secretBox,
        logger: log,
      })
  const store = await EnvironmentStore.open(postgres.controlPlaneUrl, secretBox)
  const accessStore = AccessStore.open(postgres.controlPlaneUrl)
  const identity = new IdentityService({
    store: accessStore,
    sealer: keyRing,
    region: settings.region,
    accountId: settings.accountId,
    credentialsFile: path.join(settings.dataDir, 'credentials'),
    logger: log.child({ part: 'iam' }),
  })
  await identity.bootstrap()
  const loginTokens = await LoginTokens.open(accessStore, keyRing)
  const runtimes = new RuntimeManager({
    runtimeDir: settings.runtimeDir,
    ...(settings.locksDir ? { locksDir: settings.locksDir } : {}),
    python: settings.python,
    uv,
    hostPath: settings.hostPath,
    hostEnv: settings.hostEnv,
    logger: log.child({ part: 'runtimes' }),
  })
  const objectStore = createObjectStore(settings)
  const artifacts = new ArtifactPreparer({
    objectStore,
    layersDir: path.join(settings.dataDir, 'layers'),
    uv,
    installerEnv: settings.hostEnv,
    requirementsTimeoutMs: settings.requirementsTimeoutMs,
    startupScriptTimeoutMs: settings.startupScriptTimeoutMs,
    logger: log.child({ part: 'inputs' }),
  })
  const reconciler = new EnvironmentReconciler({
    artifacts,
    store,
    driver,
    runtimes,
    keyRing,
    objectStore,
    postgres,
    logger: log,
    environmentsDir: path.join(settings.dataDir, 'environments'),
    componentPortBase: settings.componentPortBase,
    region: settings.region,
    hostPath: settings.hostPath,
    passThroughEnv: settings.passThroughEnv,
    redisServer,
    privateAddress: settings.privateAddress,
    publicAddress: settings.publicAddress,
    controlPlaneUrl: settings.endpoint,
    dagSyncIntervalMs: settings.dagSyncIntervalMs,
    resyncIntervalMs: settings.resyncIntervalMs,
    deletedRetentionMs: settings.deletedRetentionMs,
    createTimeoutMs: settings.createTimeoutMs,
    workerDrainTimeoutMs: settings.workerDrainTimeoutMs,
  })
  const autoscaler = new Autoscaler({
    store,
    driver,
    postgresAdminUrl: postgres.adminUrl,
    logger: log,
    intervalMs: settings.autoscaleIntervalMs,
    workerScaleInIdleMs: settings.workerScaleInIdleMs,
    webserverScaleInCooldownMs: settings.webserverScaleInCooldownMs,
    componentPortBase: settings.componentPortBase,
    onChange: (name) => reconciler.enqueue(name),
  })
  const service = new EnvironmentService({
    objectStore,
    store,
    reconciler,
    region: settings.region,
    accountId: settings.accountId,
    componentPortBase: settings.componentPortBase,
    deletedRetentionMs: settings.deletedRetentionMs,
    environmentsDir: path.join(settings.dataDir, 'environments'),
    loginTokens,
    invokeRestApiRatePerSecond: settings.invokeRestApiRatePerSecond,
    keyRing,
  })
  const app = createApiApp({
    service,
    region: settings.region,
    accountId: settings.accountId,
    logger: log.child({ part: 'api' }),
    access: { identity, store: accessStore },
    health: {
      // A trivial query on the control-plane database (one row of one small table).
      probeDatabase: async () => void (await accessStore.countUsers()),
      countByStatus: () => store.countByStatus(settings.deletedRetentionMs),
    },
  })
  registerExtensions(app, { service, identity, accessStore, keyRing })
  listener.serve(app.fetch)
  await writeAwsConfigFile(settings.dataDir, {
    region: settings.region,
    endpoint: settings.endpoint,
  })
  await lock.setEndpoint(settings.endpoint)
  await reconciler.start()
  autoscaler.start()
  const endpoint = settings.endpoint
  log.info({ endpoint, dataDir: settings.dataDir }, 'airdock ready')

  let stopped = false
  return {
    settings,
    endpoint,
    service,
    reconciler,
    autoscaler,
    store,
    driver,
    postgres,
    objectStore,
    runtimes,
    logger: log,
    async stop(options) {
      if (stopped) return
      stopped = true
      const stopComponents = options?.stopComponents ?? settings.stopOnExit
      await listener.close()
      await autoscaler.close()
      await reconciler.close({ stopComponents })
      await store.close()
      await accessStore.close()
      keyRing.close()
      await driver.close({ stopProcesses: stopComponents })
      await lock.release()
      log.info({ stopComponents }, 'airdock stopped')
    },
  }
}
