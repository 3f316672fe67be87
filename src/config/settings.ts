/**
 * Every airdock setting, read once from environment variables with the `AIRDOCK_` prefix.
 * This is the only module that reads `process.env` (enforced by ESLint). On a bad value,
 * `loadSettings` throws one error listing every invalid variable.
 */
import path from 'node:path'
import { z } from 'zod'

const intFrom = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

/** The settings schema: names, meanings, units and defaults (the README lists the same). */
const schema = z.object({
  /** Where airdock keeps its state: PostgreSQL data, environments, buckets, logs. */
  AIRDOCK_DATA_DIR: z.string().min(1).default('./.airdock'),
  /**
   * Port of the MWAA API. Unset: 8780 at the first start, or the next free port when 8780 is
   * taken, recorded in `$AIRDOCK_DATA_DIR/installation.json` and kept from then on. Set: that
   * port, and a busy one is an error.
   */
  AIRDOCK_PORT: intFrom(1, 65535).default(8780),
  /** Address the MWAA API listens on; every call is SigV4-authenticated, so it may be `0.0.0.0`. */
  AIRDOCK_HOST: z.string().min(1).default('127.0.0.1'),
  /** Address a PUBLIC_ONLY environment's web server (gateway) also listens on. */
  AIRDOCK_PUBLIC_ADDRESS: z.string().min(1).default('0.0.0.0'),
  /** Address every environment's web server (gateway) listens on; PRIVATE_ONLY ones only here. */
  AIRDOCK_PRIVATE_ADDRESS: z.string().min(1).default('127.0.0.1'),
  /** InvokeRestApi requests allowed per second per environment (MWAA's default: 10). */
  AIRDOCK_INVOKE_REST_API_RATE_PER_SECOND: intFrom(1, 10_000).default(10),
  /** AWS KMS endpoint for `KmsKey`s that are real KMS keys (default: the region's AWS endpoint). */
  AIRDOCK_KMS_ENDPOINT: z.string().url().optional(),
  /** Access key for AWS KMS (default: the AWS SDK's credential chain). */
  AIRDOCK_KMS_ACCESS_KEY_ID: z.string().optional(),
  /** Secret key for AWS KMS. */
  AIRDOCK_KMS_SECRET_ACCESS_KEY: z.string().optional(),
  /** Region used in ARNs and the SigV4 scope. */
  AIRDOCK_REGION: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d$/)
    .default('us-east-1'),
  /** 12-digit account id used in ARNs. */
  AIRDOCK_ACCOUNT_ID: z
    .string()
    .regex(/^\d{12}$/)
    .default('000000000000'),
  /** External PostgreSQL (superuser URL) instead of the embedded server. */
  AIRDOCK_DATABASE_URL: z.string().url().optional(),
  /**
   * Port of the embedded PostgreSQL server (loopback only). Unset: 8732 or the next free port,
   * recorded at the first start like `AIRDOCK_PORT`.
   */
  AIRDOCK_POSTGRES_PORT: intFrom(1, 65535).default(8732),
  /** Where Airflow runtimes (one virtual environment per version) are built; shared. */
  AIRDOCK_RUNTIME_DIR: z.string().min(1).optional(),
  /**
   * The folder of runtime locks (`<version>/requirements.lock`); default: the ones committed in
   * `runtimes/`. A changed lock is a runtime patch, applied in each environment's maintenance
   * window.
   */
  AIRDOCK_LOCKS_DIR: z.string().min(1).optional(),
  /** Python interpreter used to build runtimes (MWAA runs Airflow 3 on Python 3.12). */
  AIRDOCK_PYTHON: z.string().min(1).default('3.12'),
  /**
   * The `uv` executable that builds runtimes and installs requirements: a path, or a name looked
   * up first as the project's own `.tools/<name>/bin/<name>` (`make setup` installs uv there),
   * then on PATH (`findExecutable`).
   */
  AIRDOCK_UV: z.string().min(1).default('uv'),
  /** First port of the range that gateways, api-servers and brokers are given. */
  AIRDOCK_COMPONENT_PORT_BASE: intFrom(1024, 65000).default(18000),
  /** S3-compatible endpoint for `arn:aws:s3:::NAME` buckets; unset = folder buckets. */
  AIRDOCK_S3_ENDPOINT: z.string().url().optional(),
  /** Access key for the S3 endpoint. */
  AIRDOCK_S3_ACCESS_KEY_ID: z.string().optional(),
  /** Secret key for the S3 endpoint. */
  AIRDOCK_S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** Path-style S3 addressing (needed by most S3-compatible servers). */
  AIRDOCK_S3_FORCE_PATH_STYLE: bool.default(true),
  /** How often the bucket's DAG folder is mirrored into each environment, in ms. */
  AIRDOCK_DAG_SYNC_INTERVAL_MS: intFrom(200, 600_000).default(1000),
  /** How often every environment is reconciled even without events, in ms. */
  AIRDOCK_RESYNC_INTERVAL_MS: intFrom(500, 600_000).default(3000),
  /** How long a DELETED environment stays visible before GetEnvironment answers 404, in ms. */
  AIRDOCK_DELETED_RETENTION_MS: intFrom(0, 86_400_000).default(60_000),
  /** How long an environment may take to become healthy before CREATE_FAILED, in ms. */
  AIRDOCK_CREATE_TIMEOUT_MS: intFrom(10_000, 7_200_000).default(900_000),
  /** How often the autoscaler samples each environment's load (task backlog, web server CPU and connections), in ms. */
  AIRDOCK_AUTOSCALE_INTERVAL_MS: intFrom(200, 60_000).default(1000),
  /** How long queued + running tasks must stay 0 before workers scale in to MinWorkers, in ms (MWAA: 2 minutes). */
  AIRDOCK_WORKER_SCALE_IN_IDLE_MS: intFrom(0, 86_400_000).default(120_000),
  /** How long a stopped worker may take to finish its running tasks (scale-in, GRACEFUL replacement) before it is killed, in ms (MWAA: 12 h). */
  AIRDOCK_WORKER_DRAIN_TIMEOUT_MS: intFrom(0, 604_800_000).default(43_200_000),
  /** How long web server load must stay low before one web server is removed, in ms. */
  AIRDOCK_WEBSERVER_SCALE_IN_COOLDOWN_MS: intFrom(0, 86_400_000).default(60_000),
  /** How long installing an environment's requirements.txt may take, in ms (MWAA: about 10 minutes). */
  AIRDOCK_REQUIREMENTS_TIMEOUT_MS: intFrom(1_000, 3_600_000).default(600_000),
  /** How long an environment's startup script may run, in ms (MWAA: 5 minutes). */
  AIRDOCK_STARTUP_SCRIPT_TIMEOUT_MS: intFrom(1_000, 3_600_000).default(300_000),
  /** Stop every environment's processes when the control plane exits (default: keep them running and adopt them on the next start). */
  AIRDOCK_STOP_ON_EXIT: bool.default(false),
  /**
   * Failpoints for crash tests: `name=action[,name=action…]` (actions `exit`, `throw`, `off`;
   * names in `src/lib/failpoints.ts`). Never set in production: `exit` kills the control plane.
   */
  AIRDOCK_FAILPOINTS: z.string().optional(),
  /** Log level of the control plane (pino). */
  AIRDOCK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
})

/** Parsed settings (camelCase; paths absolute). */
export interface Settings {
  dataDir: string
  /**
   * Port of the MWAA API: `AIRDOCK_PORT`, or (unset) the port this installation recorded at its
   * first start (8780 or the next free one, see `platform/installation.ts`).
   */
  port: number
  /** True when `AIRDOCK_PORT` was set: then that port or nothing (a busy port is an error). */
  portIsExplicit: boolean
  host: string
  /**
   * The MWAA endpoint as seen from this machine: `http://<AIRDOCK_HOST>:<port>`, with
   * 127.0.0.1 for a wildcard host.
   */
  endpoint: string
  publicAddress: string
  privateAddress: string
  invokeRestApiRatePerSecond: number
  kms: { endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string } }
  region: string
  accountId: string
  databaseUrl?: string
  /** Preferred port of the embedded PostgreSQL (`AIRDOCK_POSTGRES_PORT`, default 8732). */
  postgresPort: number
  /** True when `AIRDOCK_POSTGRES_PORT` was set: then that port or nothing. */
  postgresPortIsExplicit: boolean
  runtimeDir: string
  /** Overrides the committed runtime locks (`runtimes/`). */
  locksDir?: string
  python: string
  uv: string
  componentPortBase: number
  s3?: { endpoint: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle: boolean }
  dagSyncIntervalMs: number
  resyncIntervalMs: number
  deletedRetentionMs: number
  createTimeoutMs: number
  autoscaleIntervalMs: number
  workerScaleInIdleMs: number
  workerDrainTimeoutMs: number
  webserverScaleInCooldownMs: number
  requirementsTimeoutMs: number
  startupScriptTimeoutMs: number
  stopOnExit: boolean
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
  /** `AIRDOCK_FAILPOINTS` as given (parsed by `startControlPlane`); empty when unset. */
  failpoints: string
  /** The host's `PATH`, handed on to Airflow processes after the runtime's own `bin`. */
  hostPath: string
  /** The host's whole environment, for installers (`uv` needs the machine's proxy and CA settings). */
  hostEnv: Record<string, string>
  /** The host variables Airflow processes inherit: CA bundles, proxies, time zone. */
  passThroughEnv: Record<string, string>
}

/** Host variables that Airflow processes inherit (TLS trust, proxies, time zone). */
const PASS_THROUGH =
  /^(SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE|AWS_CA_BUNDLE|NODE_EXTRA_CA_CERTS|HTTPS?_PROXY|https?_proxy|NO_PROXY|no_proxy|TZ)$/

/** Thrown when one or more settings are invalid; the message lists all of them. */
export class SettingsError extends Error {}

/**
 * Reads settings from `env`.
 * @param env - variables to read (default `process.env`)
 * @param cwd - base for relative paths (default `process.cwd()`)
 * @throws SettingsError listing every invalid variable
 */
export function loadSettings(
  env: Record<string, string | undefined> = process.env,
  cwd: string = process.cwd(),
): Settings {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  )
  const parsed = schema.safeParse(cleaned)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
    throw new SettingsError(`invalid settings:\n  ${lines.join('\n  ')}`)
  }
  const s = parsed.data
  const dataDir = path.resolve(cwd, s.AIRDOCK_DATA_DIR)
  return {
    dataDir,
    port: s.AIRDOCK_PORT,
    portIsExplicit: cleaned.AIRDOCK_PORT !== undefined,
    host: s.AIRDOCK_HOST,
    endpoint: endpointFor(s.AIRDOCK_HOST, s.AIRDOCK_PORT),
    publicAddress: s.AIRDOCK_PUBLIC_ADDRESS,
    privateAddress: s.AIRDOCK_PRIVATE_ADDRESS,
    invokeRestApiRatePerSecond: s.AIRDOCK_INVOKE_REST_API_RATE_PER_SECOND,
    kms: {
      ...(s.AIRDOCK_KMS_ENDPOINT ? { endpoint: s.AIRDOCK_KMS_ENDPOINT } : {}),
      ...(s.AIRDOCK_KMS_ACCESS_KEY_ID && s.AIRDOCK_KMS_SECRET_ACCESS_KEY
        ? {
            credentials: {
              accessKeyId: s.AIRDOCK_KMS_ACCESS_KEY_ID,
              secretAccessKey: s.AIRDOCK_KMS_SECRET_ACCESS_KEY,
            },
          }
        : {}),
    },
    region: s.AIRDOCK_REGION,
    accountId: s.AIRDOCK_ACCOUNT_ID,
    databaseUrl: s.AIRDOCK_DATABASE_URL,
    postgresPort: s.AIRDOCK_POSTGRES_PORT,
    postgresPortIsExplicit: cleaned.AIRDOCK_POSTGRES_PORT !== undefined,
    runtimeDir: path.resolve(cwd, s.AIRDOCK_RUNTIME_DIR ?? path.join(dataDir, 'runtimes')),
    ...(s.AIRDOCK_LOCKS_DIR ? { locksDir: path.resolve(cwd, s.AIRDOCK_LOCKS_DIR) } : {}),
    python: s.AIRDOCK_PYTHON,
    uv: s.AIRDOCK_UV,
    componentPortBase: s.AIRDOCK_COMPONENT_PORT_BASE,
    s3: s.AIRDOCK_S3_ENDPOINT
      ? {
          endpoint: s.AIRDOCK_S3_ENDPOINT,
          accessKeyId: s.AIRDOCK_S3_ACCESS_KEY_ID,
          secretAccessKey: s.AIRDOCK_S3_SECRET_ACCESS_KEY,
          forcePathStyle: s.AIRDOCK_S3_FORCE_PATH_STYLE,
        }
      : undefined,
    dagSyncIntervalMs: s.AIRDOCK_DAG_SYNC_INTERVAL_MS,
    resyncIntervalMs: s.AIRDOCK_RESYNC_INTERVAL_MS,
    deletedRetentionMs: s.AIRDOCK_DELETED_RETENTION_MS,
    createTimeoutMs: s.AIRDOCK_CREATE_TIMEOUT_MS,
    autoscaleIntervalMs: s.AIRDOCK_AUTOSCALE_INTERVAL_MS,
    workerScaleInIdleMs: s.AIRDOCK_WORKER_SCALE_IN_IDLE_MS,
    workerDrainTimeoutMs: s.AIRDOCK_WORKER_DRAIN_TIMEOUT_MS,
    webserverScaleInCooldownMs: s.AIRDOCK_WEBSERVER_SCALE_IN_COOLDOWN_MS,
    requirementsTimeoutMs: s.AIRDOCK_REQUIREMENTS_TIMEOUT_MS,
    startupScriptTimeoutMs: s.AIRDOCK_STARTUP_SCRIPT_TIMEOUT_MS,
    stopOnExit: s.AIRDOCK_STOP_ON_EXIT,
    logLevel: s.AIRDOCK_LOG_LEVEL,
    failpoints: s.AIRDOCK_FAILPOINTS ?? '',
    hostPath: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    hostEnv: definedOnly(env),
    passThroughEnv: definedOnly(
      Object.fromEntries(Object.entries(env).filter(([k]) => PASS_THROUGH.test(k))),
    ),
  }
}

/**
 * The MWAA endpoint as seen from this machine for an API listening on `host`:`port`
 * (127.0.0.1 for a wildcard host).
 */
export function endpointFor(host: string, port: number): string {
  return `http://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`
}

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
  )
}
