/**
 * Turns an environment's spec into the component specs the driver runs (DESIGN.md decisions 4
 * and 6). This is the only module that knows how Airflow 3 is started as processes; see
 * `../shared/reference/airflow3-runtime.md` §1, §2 and §10.
 *
 * Per environment class:
 * - `mw1.micro` (hybrid): api-server, one scheduler running tasks with the LocalExecutor
 *   (parallelism 3), dag-processor, triggerer.
 * - `mw1.small` and larger: a Redis broker, api-server × desired web servers, scheduler ×
 *   Schedulers, dag-processor, triggerer, and the Celery workers the reconciler asks for (by
 *   index: `worker-<i>`, never reused while one runs, so a replacement can start next to the
 *   worker it replaces while that one drains) with the class's concurrency.
 *
 * Every component gets the same explicit secrets (fernet key, JWT secret, API secret key), so
 * no process invents its own, and the same configuration; AirflowConfigurationOptions become
 * `AIRFLOW__SECTION__KEY` and are applied before airdock's own settings, which win.
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import { normalizeAirflowOptionKey } from '../domain/airflow-options.js'
import { findEnvironmentClass } from '../domain/environment-classes.js'
import type {
  EnvironmentPorts,
  EnvironmentRecord,
  EnvironmentSpec,
  LoggingLevel,
  LogType,
} from '../domain/environment.js'
import type { ComponentSpec } from '../runtime/driver.js'
import type { Runtime } from './runtime-manager.js'

/** An environment's folders (all under `$AIRDOCK_DATA_DIR/environments/<id>/`). */
export interface EnvironmentLayout {
  /** The environment folder; AIRFLOW_HOME. */
  homeDir: string
  dagsDir: string
  pluginsDir: string
  /** Airflow's base log folder (task logs). */
  logsDir: string
  /** Component stdout/stderr files. */
  componentLogsDir: string
  /** AIRFLOW_CONFIG: exists so Airflow never generates one with random keys. */
  configFile: string
  /** SimpleAuthManager's passwords file. */
  passwordsFile: string
  /** Broker data folder (Redis `dir`). */
  brokerDir: string
  /** The broker's Redis configuration file (holds its password's SHA-256; mode 0600). */
  brokerConfigFile: string
  /** The running api-servers, as the gateway process reads them. */
  gatewayUpstreamsFile: string
  /** What the DAG sync last mirrored (key → version), so a restart does not rewrite it all. */
  dagSyncManifestFile: string
  /** `{ name, arn }` of the environment, for `airdock status` (which reads no database). */
  identityFile: string
}

/** The stdout/stderr file of component `name` (e.g. `scheduler-1`). */
export function componentLogFile(layout: EnvironmentLayout, name: string): string {
  return path.join(layout.componentLogsDir, `${name}.log`)
}

/**
 * Folder layout of an environment.
 * @param environmentsDir - `$AIRDOCK_DATA_DIR/environments`
 * @param environmentId - the environment's stable id
 */
export function environmentLayout(
  environmentsDir: string,
  environmentId: string,
): EnvironmentLayout {
  const homeDir = path.join(environmentsDir, environmentId)
  return {
    homeDir,
    dagsDir: path.join(homeDir, 'dags'),
    pluginsDir: path.join(homeDir, 'plugins'),
    logsDir: path.join(homeDir, 'logs'),
    componentLogsDir: path.join(homeDir, 'logs', 'components'),
    configFile: path.join(homeDir, 'airflow.cfg'),
    passwordsFile: path.join(homeDir, 'simple_auth_manager_passwords.json'),
    brokerDir: path.join(homeDir, 'broker'),
    brokerConfigFile: path.join(homeDir, 'broker', 'redis.conf'),
    gatewayUpstreamsFile: path.join(homeDir, 'gateway-upstreams.json'),
    dagSyncManifestFile: path.join(homeDir, 'dag-sync-manifest.json'),
    identityFile: path.join(homeDir, 'environment.json'),
  }
}

/** Secrets generated once per environment. */
export interface EnvironmentSecrets {
  /** `[core] fernet_key`: 32 bytes, url-safe base64. */
  fernetKey: string
  /** `[api_auth] jwt_secret`: signs UI/API and Execution API tokens (HS512). */
  jwtSecret: string
  /** `[api] secret_key`: log-server tokens and sessions. */
  apiSecretKey: string
  /** Password of the environment's database role. */
  databasePassword: string
  /** Password of the broker (its SHA-256 is the Redis ACL password). */
  brokerPassword: string
}

export type { EnvironmentPorts } from '../domain/environment.js'

/** Ports per environment block. */
export const PORTS_PER_BLOCK = 16

/**
 * The ports of port block `block`: base + 16·block + [0 gateway, 1 broker, 2..6 api-servers].
 */
export function portsForBlock(base: number, block: number): EnvironmentPorts {
  const first = base + block * PORTS_PER_BLOCK
  return {
    gateway: first,
    broker: first + 1,
    apiServers: [2, 3, 4, 5, 6].map((o) => first + o),
  }
}

/**
 * The ports an environment's components use: those recorded in its observation, or (records of
 * older versions) its port block's.
 */
export function environmentPorts(
  record: Pick<EnvironmentRecord, 'observation' | 'portBlock'>,
  base: number,
): EnvironmentPorts {
  return record.observation.ports ?? portsForBlock(base, record.portBlock)
}

/** Host name the environment's web server is reached by (MWAA: `<uuid>.c2.<region>.airflow.amazonaws.com`). */
export function webserverHostname(environmentId: string): string {
  return `${environmentId}.airflow.localhost`
}

/** Everything the planner needs. */
export interface PlanInput {
  environmentName: string
  environmentId: string
  spec: EnvironmentSpec
  layout: EnvironmentLayout
  runtime: Runtime
  ports: EnvironmentPorts
  secrets: EnvironmentSecrets
  /** Superuser-free connection info of the environment's own database. */
  database: { host: string; port: number; name: string; user: string }
  /**
   * Indices of the Celery workers to run, each becoming `worker-<i>` (ignored for `mw1.micro`).
   * Chosen by the reconciler's worker plan.
   */
  workers: number[]
  /** Web servers (api-servers) to run: the autoscaler's count, clamped (mw1.micro: always 1). */
  webservers: number
  /**
   * How long a stopped Celery worker may take to finish its running tasks before SIGKILL, in ms
   * (the bound of GRACEFUL replacement and of scale-in drains; MWAA: 12 h).
   */
  workerDrainTimeoutMs: number
  /** The host's PATH (appended after the runtime's `bin`). */
  hostPath: string
  /** Host variables every process inherits (CA bundles, proxies, TZ); lowest precedence. */
  passThroughEnv?: Record<string, string>
  /** Region for `AWS_REGION` / `AWS_DEFAULT_REGION`. */
  region: string
  /** The `redis-server` executable. */
  redisServer: string
  /** How often the dag-processor re-lists the DAG folder for new files, in seconds. */
  dagRefreshIntervalSeconds?: number
  /**
   * The environment's prepared inputs (issue 5): the requirements layer (first on
   * `PYTHONPATH`), the extracted plugins folder, and the startup script's exports per MWAA
   * component kind.
   */
  artifacts?: {
    pythonPath?: string
    pluginsDir?: string
    startupEnv?: Record<string, Record<string, string>>
  }
}

/** Which MWAA log type governs each component's log level. */
const LOG_TYPE_OF: Record<string, LogType> = {
  'api-server': 'webserverLogs',
  scheduler: 'schedulerLogs',
  'dag-processor': 'dagProcessingLogs',
  triggerer: 'schedulerLogs',
  worker: 'workerLogs',
}

/** `MWAA_AIRFLOW_COMPONENT` values MWAA sets for user code (reference §8). */
const MWAA_COMPONENT_OF: Record<string, string> = {
  'api-server': 'webserver',
  scheduler: 'scheduler',
  'dag-processor': 'scheduler',
  triggerer: 'scheduler',
  worker: 'worker',
}

/**
 * {@link ComponentSpec.niceness} of the batch components: those that run user tasks (Celery
 * workers, mw1.micro's scheduler, whose LocalExecutor forks the tasks) or parse user code (the
 * dag-processor). The interactive ones — api-servers, the gateway, the broker, PostgreSQL — and
 * the scheduling loop of the Celery classes and the triggerer keep 0. On MWAA the web servers run
 * in containers of their own, so tasks never starve them; here they share the machine's CPUs
 * with the tasks (docs/benchmarks.md, "InvokeRestApi under load"). 10 is `nice(1)`'s default: a
 * CFS weight of 110 against 1024, so a runnable api-server gets about 9 times the CPU of a busy
 * batch process (or session, under Linux's autogroups).
 */
export const BATCH_NICENESS = 10

/** Milliseconds a component gets between SIGTERM and SIGKILL (workers: `workerDrainTimeoutMs`). */
const STOP_GRACE_MS: Record<string, number> = {
  'api-server': 15_000,
  scheduler: 30_000,
  'dag-processor': 15_000,
  triggerer: 30_000,
  broker: 10_000,
}

/**
 * Task slots per Celery worker: the max of `celery.worker_autoscale` (`max,min`) when the
 * environment sets it, else the class's default (5, 10, 20, 40, 80; MWAA "Environment class").
 * mw1.micro: 3 (its LocalExecutor parallelism).
 */
export function tasksPerWorker(spec: EnvironmentSpec): number {
  const autoscale = spec.airflowConfigurationOptions['celery.worker_autoscale']
  const max = autoscale === undefined ? NaN : Number(autoscale.split(',')[0])
  if (Number.isInteger(max) && max > 0) return max
  return findEnvironmentClass(spec.environmentClass)?.tasksPerWorker ?? 5
}

/** The Celery queue the workers consume: `operators.default_queue`, Airflow's default `default`. */
export function workerQueue(spec: EnvironmentSpec): string {
  return spec.airflowConfigurationOptions['operators.default_queue'] ?? 'default'
}

/**
 * Converts AirflowConfigurationOptions (`section.key` → value) into environment variables.
 * `celery.worker_autoscale` → `AIRFLOW__CELERY__WORKER_AUTOSCALE`; a key with more dots keeps
 * them in the option part (`foo.bar.baz` → `AIRFLOW__FOO__BAR.BAZ` is not a valid variable, so
 * the dots after the first become underscores, as MWAA's conversion does).
 */
export function configurationOptionsToEnv(options: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(options)) {
    const normalized = normalizeAirflowOptionKey(key)
    const dot = normalized.indexOf('.')
    if (dot <= 0) continue
    env[
      `AIRFLOW__${normalized.slice(0, dot).toUpperCase()}__${normalized.slice(dot + 1).toUpperCase()}`
    ] = value
  }
  return env
}

function levelFor(spec: EnvironmentSpec, component: string): LoggingLevel {
  const type = LOG_TYPE_OF[component]
  return type ? spec.loggingConfiguration[type].logLevel : 'INFO'
}

/** The `postgresql+psycopg2://…` URL of the environment's database. */
export function sqlAlchemyUrl(input: Pick<PlanInput, 'database' | 'secrets'>): string {
  const { database, secrets } = input
  return `postgresql+psycopg2://${encodeURIComponent(database.user)}:${encodeURIComponent(secrets.databasePassword)}@${database.host}:${database.port}/${database.name}`
}

/**
 * The environment variables of the environment's Airflow processes of MWAA component `kind`
 * (`scheduler`, `worker`, `webserver`; all of them share everything but the startup script's
 * exports). Order of precedence (low → high), as MWAA's: airdock defaults, the startup script's
 * exports, AirflowConfigurationOptions, airdock's essential settings (executor, database,
 * broker, secrets, folders, auth).
 */
export function airflowEnvironment(input: PlanInput, kind?: string): Record<string, string> {
  const { spec, layout, runtime, ports, secrets } = input
  const hybrid = findEnvironmentClass(spec.environmentClass)?.hybrid ?? false
  const gatewayUrl = `http://127.0.0.1:${ports.gateway}`
  const defaults: Record<string, string> = {
    // New DAG files visible in seconds instead of 300 s (reference §2.4).
    AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL: String(input.dagRefreshIntervalSeconds ?? 3),
    AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL: '1',
    AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES: '1',
    AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL: '5',
    AIRFLOW__CORE__MIN_SERIALIZED_DAG_FETCH_INTERVAL: '2',
    AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT: '1800.0',
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED: 'False',
    AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES: 'proxy,proxies',
    AIRFLOW__API__WORKERS: '1',
    AIRFLOW__LOGGING__COLORED_CONSOLE_LOG: 'False',
    // A scheduler that crashed mid-task leaves its task instances "running"; they are reset and
    // retried at the next orphan check (Airflow's default is every 300 s).
    AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL: '60',
  }
  const essential: Record<string, string> = {
    AIRFLOW_HOME: layout.homeDir,
    AIRFLOW_CONFIG: layout.configFile,
    AIRFLOW__CORE__DAGS_FOLDER: layout.dagsDir,
    AIRFLOW__CORE__PLUGINS_FOLDER: input.artifacts?.pluginsDir ?? layout.pluginsDir,
    AIRFLOW__LOGGING__BASE_LOG_FOLDER: layout.logsDir,
    AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
    AIRFLOW__CORE__FERNET_KEY: secrets.fernetKey,
    AIRFLOW__API_AUTH__JWT_SECRET: secrets.jwtSecret,
    AIRFLOW__API__SECRET_KEY: secrets.apiSecretKey,
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: sqlAlchemyUrl(input),
    AIRFLOW__API__BASE_URL: `http://${webserverHostname(input.environmentId)}:${ports.gateway}/`,
    // Tasks reach the Execution API through the gateway, which balances the api-servers.
    AIRFLOW__CORE__EXECUTION_API_SERVER_URL: `${gatewayUrl}/execution/`,
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS: 'admin:admin',
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: layout.passwordsFile,
    AIRFLOW__CORE__EXECUTOR: hybrid ? 'LocalExecutor' : 'CeleryExecutor',
    AIRFLOW_ENV_NAME: input.environmentName,
    AIRFLOW_ENV_ID: input.environmentId,
    AIRFLOW_VERSION: runtime.airflowVersion,
    AWS_REGION: input.region,
    AWS_DEFAULT_REGION: input.region,
    PATH: `${runtime.binDir}:${input.hostPath}`,
    VIRTUAL_ENV: runtime.dir,
    PYTHONUNBUFFERED: '1',
    LANG: 'C.UTF-8',
    HOME: layout.homeDir,
  }
  if (hybrid) {
    essential.AIRFLOW__CORE__PARALLELISM = '3'
  } else {
    const classSlots = findEnvironmentClass(spec.environmentClass)?.tasksPerWorker ?? 5
    essential.AIRFLOW__CELERY__BROKER_URL = `redis://:${encodeURIComponent(secrets.brokerPassword)}@127.0.0.1:${ports.broker}/0`
    essential.AIRFLOW__CELERY__RESULT_BACKEND = `db+${sqlAlchemyUrl(input).replace('+psycopg2', '')}`
    essential.AIRFLOW__CELERY__WORKER_CONCURRENCY = String(classSlots)
    essential.AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER = '1'
    essential.AIRFLOW__CELERY__TASK_ACKS_LATE = 'True'
    // MWAA's SQS queue redelivers an unacknowledged task after 12 h; Redis does the same here.
    essential.AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT = '43200'
  }
  if (input.artifacts?.pythonPath) essential.PYTHONPATH = input.artifacts.pythonPath
  return {
    ...input.passThroughEnv,
    ...defaults,
    ...(kind ? (input.artifacts?.startupEnv?.[kind] ?? {}) : {}),
    ...configurationOptionsToEnv(spec.airflowConfigurationOptions),
    ...essential,
  }
}

/**
 * The MWAA component kinds (`MWAA_AIRFLOW_COMPONENT`) an environment runs: scheduler and
 * webserver, plus worker for the Celery classes (mw1.micro's scheduler runs the tasks).
 */
export function mwaaComponentKinds(spec: Pick<EnvironmentSpec, 'environmentClass'>): string[] {
  const hybrid = findEnvironmentClass(spec.environmentClass)?.hybrid ?? false
  return hybrid ? ['scheduler', 'webserver'] : ['scheduler', 'worker', 'webserver']
}

/** The MWAA component kind (`MWAA_AIRFLOW_COMPONENT`) of an airdock component. */
export function mwaaComponentKind(component: string): string {
  return MWAA_COMPONENT_OF[component] ?? component
}

function airflowComponent(
  input: PlanInput,
  shared: Record<string, string>,
  component: string,
  index: number,
  args: string[],
  extraEnv: Record<string, string> = {},
): ComponentSpec {
  const name = `${component}-${index}`
  return {
    name,
    component,
    command: input.runtime.airflow,
    args,
    env: {
      ...shared,
      AIRFLOW__LOGGING__LOGGING_LEVEL: levelFor(input.spec, component),
      MWAA_AIRFLOW_COMPONENT: mwaaComponentKind(component),
      ...extraEnv,
    },
    cwd: input.layout.homeDir,
    logFile: componentLogFile(input.layout, name),
    stopGracePeriodMs: STOP_GRACE_MS[component] ?? 30_000,
  }
}

/**
 * The broker's Redis configuration (written to `layout.brokerConfigFile`, mode 0600, by the
 * reconciler): loopback only, the environment's port, an ACL user whose password is given by
 * its SHA-256 (so no clear password is on disk), append-only persistence so
 * queued tasks survive a broker restart.
 */
export function brokerConfig(input: PlanInput): string {
  return [
    'bind 127.0.0.1',
    `port ${input.ports.broker}`,
    `dir ${input.layout.brokerDir}`,
    'appendonly yes',
    'save ""',
    'protected-mode yes',
    // Redis ACL with the password's SHA-256, so the file never holds the password itself.
    `user default on #${createHash('sha256').update(input.secrets.brokerPassword).digest('hex')} ~* &* +@all`,
    '',
  ].join('\n')
}

/**
 * The api-servers an environment runs and the loopback port of each (mw1.micro: one;
 * otherwise `input.webservers`, at most one per port of the block), in order: `api-server-1`
 * gets the block's first api-server port.
 */
export function apiServerPorts(
  input: Pick<PlanInput, 'spec' | 'ports' | 'webservers'>,
): { name: string; index: number; port: number }[] {
  const hybrid = findEnvironmentClass(input.spec.environmentClass)?.hybrid ?? false
  const count = hybrid ? 1 : Math.min(Math.max(1, input.webservers), input.ports.apiServers.length)
  return Array.from({ length: count }, (_, i) => ({
    name: `api-server-${i + 1}`,
    index: i + 1,
    port: input.ports.apiServers[i]!,
  }))
}

/**
 * Plans every component of an environment, one spec per process.
 * @returns specs named `<component>-<n>` (n from 1), broker first, api-servers before the rest
 */
export function planComponents(input: PlanInput): ComponentSpec[] {
  const { spec } = input
  const info = findEnvironmentClass(spec.environmentClass)
  const hybrid = info?.hybrid ?? false
  const envs = new Map<string, Record<string, string>>()
  const envOf = (component: string): Record<string, string> => {
    const kind = mwaaComponentKind(component)
    let env = envs.get(kind)
    if (!env) envs.set(kind, (env = airflowEnvironment(input, kind)))
    return env
  }
  const specs: ComponentSpec[] = []

  if (!hybrid) {
    specs.push({
      name: 'broker-1',
      component: 'broker',
      command: input.redisServer,
      // The password lives in the 0600 config file, not on the command line (which any local
      // user can read in /proc).
      args: [input.layout.brokerConfigFile],
      env: {
        PATH: input.hostPath,
        LANG: 'C.UTF-8',
        // A changed configuration changes the spec, so the driver restarts the broker.
        AIRDOCK_CONFIG_SHA256: createHash('sha256').update(brokerConfig(input)).digest('hex'),
      },
      cwd: input.layout.brokerDir,
      logFile: componentLogFile(input.layout, 'broker-1'),
      stopGracePeriodMs: STOP_GRACE_MS.broker!,
    })
  }

  for (const { index, port } of apiServerPorts(input)) {
    specs.push(
      airflowComponent(input, envOf('api-server'), 'api-server', index, [
        'api-server',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        '1',
        '--proxy-headers',
      ]),
    )
  }
  const schedulers = hybrid ? 1 : spec.schedulers
  for (let i = 1; i <= schedulers; i++) {
    specs.push({
      ...airflowComponent(input, envOf('scheduler'), 'scheduler', i, [
        'scheduler',
        '--skip-serve-logs',
      ]),
      // mw1.micro's scheduler runs the tasks (LocalExecutor): batch.
      ...(hybrid ? { niceness: BATCH_NICENESS } : {}),
    })
  }
  specs.push({
    ...airflowComponent(input, envOf('dag-processor'), 'dag-processor', 1, ['dag-processor']),
    niceness: BATCH_NICENESS,
  })
  specs.push(
    airflowComponent(input, envOf('triggerer'), 'triggerer', 1, ['triggerer', '--skip-serve-logs']),
  )
  if (!hybrid) {
    for (const index of input.workers) specs.push(workerSpec(input, index, envOf('worker')))
  }
  return specs
}

/**
 * The spec of Celery worker `worker-<index>`: consumes the environment's queue with the class's
 * concurrency under the Celery name `<environment id>-worker-<index>@<host>`. Stopping it sends
 * SIGTERM to its main pid only — Celery's warm shutdown: it stops taking tasks, lets the running
 * ones finish (reference `airflow3-runtime.md` §6.2), and hands unstarted prefetched messages
 * back to the broker — and SIGKILLs only after `workerDrainTimeoutMs`.
 * @param shared - {@link airflowEnvironment} of `input` for workers (computed once by the caller)
 */
export function workerSpec(
  input: PlanInput,
  index: number,
  shared: Record<string, string> = airflowEnvironment(input, 'worker'),
): ComponentSpec {
  return {
    ...airflowComponent(input, shared, 'worker', index, [
      'celery',
      'worker',
      '--concurrency',
      shared.AIRFLOW__CELERY__WORKER_CONCURRENCY ?? '5',
      '--queues',
      workerQueue(input.spec),
      '--celery-hostname',
      `${input.environmentId}-worker-${index}@%h`,
      '--skip-serve-logs',
      // No start-up exchange with the other workers (mingle waits up to 1 s for replies; gossip
      // events are unused): a scaled-out worker takes tasks sooner.
      '--without-mingle',
      '--without-gossip',
    ]),
    stopSignal: 'SIGTERM',
    stopGracePeriodMs: input.workerDrainTimeoutMs,
    niceness: BATCH_NICENESS,
  }
}

/**
 * The one-shot command that brings the metadata database's schema to `input.runtime`'s Airflow
 * version (`airflow db migrate`; run once per database and version), or with `downgradeTo`, down
 * to that older version: `airflow db downgrade --to-version V --yes`, run by `input.runtime`,
 * the newer runtime, since only it knows the migrations to undo.
 */
export function migrateCommand(
  input: PlanInput,
  downgradeTo?: string,
): {
  command: string
  args: string[]
  env: Record<string, string>
} {
  const args = downgradeTo
    ? ['db', 'downgrade', '--to-version', downgradeTo, '--yes']
    : ['db', 'migrate']
  return { command: input.runtime.airflow, args, env: airflowEnvironment(input) }
}
