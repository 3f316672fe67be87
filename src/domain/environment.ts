/**
 * The environment: airdock's one resource kind, in camelCase (MWAA's PascalCase wire shapes live
 * only in `src/api/wire.ts`).
 *
 * An environment has a **spec** (what the user asked for, written only by the environment
 * service, versioned by `generation`) and a **status** (what the reconciler observed, written
 * only by the reconciler). The MWAA status string is derived from the status by
 * `deriveEnvironmentStatus` (see `status.ts`).
 */

/** MWAA `EnvironmentStatus` values (botocore model `mwaa/2020-07-01`). */
export const ENVIRONMENT_STATUSES = [
  'CREATING',
  'CREATE_FAILED',
  'AVAILABLE',
  'UPDATING',
  'DELETING',
  'DELETED',
  'UNAVAILABLE',
  'UPDATE_FAILED',
  'ROLLING_BACK',
  'CREATING_SNAPSHOT',
  'PENDING',
  'MAINTENANCE',
] as const
/** One MWAA environment status. */
export type EnvironmentStatus = (typeof ENVIRONMENT_STATUSES)[number]

/** MWAA `LoggingLevel`. */
export const LOGGING_LEVELS = ['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG'] as const
/** One Airflow log level as MWAA names it. */
export type LoggingLevel = (typeof LOGGING_LEVELS)[number]

/** The five MWAA log types, in the order MWAA lists them. */
export const LOG_TYPES = [
  'dagProcessingLogs',
  'schedulerLogs',
  'webserverLogs',
  'workerLogs',
  'taskLogs',
] as const
/** One MWAA log type (camelCase of `DagProcessingLogs` …). */
export type LogType = (typeof LOG_TYPES)[number]

/** One log type's setting (`ModuleLoggingConfigurationInput`). */
export interface ModuleLoggingConfiguration {
  enabled: boolean
  logLevel: LoggingLevel
}

/** `LoggingConfiguration`: every log type is always present in the spec (defaults filled in). */
export type LoggingConfiguration = Record<LogType, ModuleLoggingConfiguration>

/** `NetworkConfiguration`: stored and echoed; locally every component listens on loopback. */
export interface NetworkConfiguration {
  subnetIds: string[]
  securityGroupIds: string[]
}

/** MWAA `WebserverAccessMode`. */
export const WEBSERVER_ACCESS_MODES = ['PRIVATE_ONLY', 'PUBLIC_ONLY', 'PUBLIC_AND_PRIVATE'] as const
/** How the environment's web server is reachable. */
export type WebserverAccessMode = (typeof WEBSERVER_ACCESS_MODES)[number]

/** MWAA `EndpointManagement`. */
export const ENDPOINT_MANAGEMENTS = ['CUSTOMER', 'SERVICE'] as const
/** Who manages the VPC endpoints (stored only; locally always SERVICE-like). */
export type EndpointManagement = (typeof ENDPOINT_MANAGEMENTS)[number]

/** MWAA `WorkerReplacementStrategy`. */
export const WORKER_REPLACEMENT_STRATEGIES = ['FORCED', 'GRACEFUL'] as const
/** How workers are replaced on an update. */
export type WorkerReplacementStrategy = (typeof WORKER_REPLACEMENT_STRATEGIES)[number]

/**
 * The desired state of an environment, with every MWAA default filled in.
 * Counts are process counts; paths are object keys relative to the bucket root.
 */
export interface EnvironmentSpec {
  executionRoleArn: string
  sourceBucketArn: string
  dagS3Path: string
  networkConfiguration: NetworkConfiguration
  pluginsS3Path?: string
  pluginsS3ObjectVersion?: string
  requirementsS3Path?: string
  requirementsS3ObjectVersion?: string
  startupScriptS3Path?: string
  startupScriptS3ObjectVersion?: string
  /** `section.option` → value; becomes `AIRFLOW__SECTION__OPTION` for every component. */
  airflowConfigurationOptions: Record<string, string>
  environmentClass: string
  maxWorkers: number
  minWorkers: number
  schedulers: number
  minWebservers: number
  maxWebservers: number
  kmsKey?: string
  airflowVersion: string
  loggingConfiguration: LoggingConfiguration
  weeklyMaintenanceWindowStart: string
  webserverAccessMode: WebserverAccessMode
  endpointManagement: EndpointManagement
}

/** MWAA `UpdateStatus` of `LastUpdate`. */
export type UpdateStatus = 'SUCCESS' | 'PENDING' | 'FAILED'

/** MWAA `LastUpdate`: the most recent create or update and how it ended. */
export interface LastUpdate {
  status: UpdateStatus
  createdAt: Date
  /** Who asked: `CreateEnvironment`, `UpdateEnvironment`, or an airdock-internal source. */
  source: string
  error?: { errorCode: string; errorMessage: string }
  workerReplacementStrategy?: WorkerReplacementStrategy
}

/** Lifecycle phase the reconciler is in for this environment (input to the status derivation). */
export type EnvironmentPhase =
  /** Accepted, nothing provisioned yet, or provisioning for the first time. */
  | 'creating'
  /** First provisioning failed and was cleaned up; only delete is allowed. */
  | 'create-failed'
  /** Has been AVAILABLE at least once. */
  | 'provisioned'
  /** DeleteEnvironment accepted; teardown in progress. */
  | 'deleting'
  /** Torn down; kept briefly so GetEnvironment answers DELETED, then purged. */
  | 'deleted'

/** One component's observed state, as shown by the airdock status extension. */
export interface ComponentStatus {
  name: string
  /** Component kind: api-server, scheduler, dag-processor, triggerer, worker, broker. */
  component: string
  phase: 'starting' | 'running' | 'stopping' | 'exited' | 'crash-looping'
  pid?: number
  restarts: number
  /** Airflow's own view where it has one (from `/api/v2/monitor/health`). */
  healthy?: boolean
  message?: string
}

/**
 * What the reconciler observed. Written only by the reconciler (single writer).
 */
export interface EnvironmentObservation {
  phase: EnvironmentPhase
  /** The spec generation the running components were last converged to. */
  observedGeneration: number
  /** True when every component is running and Airflow reports itself healthy. */
  healthy: boolean
  /** True when a component keeps crashing (the driver's crash-loop detection). */
  crashLooping: boolean
  /** True while converging to `generation` after a create/update started. */
  progressing: boolean
  /** Set when the latest create/update ended in failure (`create-failed` or UPDATE_FAILED). */
  failedGeneration?: number
  /** Machine-readable reason for a failure or outage, e.g. `RUNTIME_BUILD_FAILED`. */
  failureCode?: string
  /** Human-readable reason for the current unhealthy/failed state. */
  message?: string
  /** When the environment was first seen healthy for the current generation (for figures). */
  availableAt?: Date
  components: ComponentStatus[]
  /** Airflow version whose schema `airflow db migrate` last brought the database to. */
  migratedAirflowVersion?: string
  /** An in-place Airflow version change under way (UpdateEnvironment with a new AirflowVersion). */
  versionChange?: VersionChange
  /** Maintenance under way in the environment's weekly window (status MAINTENANCE). */
  maintenance?: Maintenance
  /**
   * The runtime folder the environment's components run (`<version>-<lock hash>`): a newer lock
   * for the same version is a runtime patch, applied in the maintenance window.
   */
  runtimeKey?: string
  /** Maintenance waiting for the weekly window (shown by `airdock status`). */
  pendingMaintenance?: string
  /** A runtime that failed to come up in maintenance: not tried again. */
  failedRuntimeKey?: string
  /**
   * The loopback ports handed to the environment's components, each checked free when handed
   * out (and again before a component that is not running starts on it). Absent in records of
   * older versions: then the port block's (`portsForBlock`).
   */
  ports?: EnvironmentPorts
  /**
   * What the components inherit from the host, recorded at the environment's first reconcile
   * and kept: a control plane restarted from another shell (another `PATH`, cron, a service
   * manager) then adopts every component instead of restarting them for a changed spec.
   */
  host?: HostEnvironment
}

/** Loopback ports an environment's components listen on. */
export interface EnvironmentPorts {
  /** The web server (gateway). */
  gateway: number
  /** The Celery broker (Redis). */
  broker: number
  /** One per possible api-server (up to 5, MWAA's web server quota). */
  apiServers: number[]
}

/** The host's part of every component's spec (see {@link EnvironmentObservation.host}). */
export interface HostEnvironment {
  /** The host's `PATH` (after the runtime's own `bin`). */
  path: string
  /** Host variables handed on (CA bundles, proxies, time zone; `settings.passThroughEnv`). */
  passThroughEnv: Record<string, string>
  /** Absolute path of `redis-server`. */
  redisServer: string
  /** Absolute path of the Node.js executable that runs the gateway. */
  nodeExecutable: string
}

/**
 * Steps of an in-place Airflow version change (MWAA reference §10: UPDATING → CREATING_SNAPSHOT
 * → UPDATING → AVAILABLE; on failure ROLLING_BACK → UPDATE_FAILED):
 * - `preparing` (UPDATING): the new runtime is built and the inputs prepared for it; nothing
 *   running is touched, so a failure here just refuses the update;
 * - `snapshotting` (CREATING_SNAPSHOT): Airflow's components are stopped (running tasks end, as
 *   on MWAA) and the metadata database is copied;
 * - `migrating` (UPDATING): the schema is moved (`db migrate` of the new runtime, or
 *   `db downgrade --to-version` of the old one);
 * - `starting` (UPDATING): the components start on the new runtime, and every plugin and DAG is
 *   imported; healthy ends the change;
 * - `rolling-back` (ROLLING_BACK): the components are stopped, the snapshot restored and the old
 *   runtime started again; the update ends UPDATE_FAILED.
 */
export type VersionChangeStep =
  'preparing' | 'snapshotting' | 'migrating' | 'starting' | 'rolling-back'

/** An in-place Airflow version change (written by the reconciler only). */
export interface VersionChange {
  /** The update (spec generation) that asked for it. */
  generation: number
  fromVersion: string
  toVersion: string
  step: VersionChangeStep
  /** When the current step began (ISO 8601 in storage). */
  stepStartedAt: Date
  /** Why it is rolling back. */
  reason?: string
}

/** Maintenance in the weekly window (written by the reconciler only). */
export interface Maintenance {
  /** What is applied, e.g. `runtime patch 3.3.2-1999378e0842 → 3.3.2-5c1d…`. */
  description: string
  startedAt: Date
  /** The runtime folder being moved to. */
  toRuntimeKey: string
}

/** The latest accepted create/update request (written by the environment service only). */
export interface LastUpdateRequest {
  createdAt: Date
  /** `CreateEnvironment` or `UpdateEnvironment` (or an airdock-internal source). */
  source: string
  workerReplacementStrategy?: WorkerReplacementStrategy
}

/**
 * The autoscaler's decisions for one environment. Written only by the autoscaler (the only
 * writer of the desired worker and web server counts); the reconciler reads them, clamped to the
 * spec's current Min/Max so an UpdateEnvironment takes effect before the autoscaler's next look.
 */
export interface EnvironmentScaling {
  /** Celery workers wanted, MinWorkers..MaxWorkers. */
  desiredWorkers: number
  /** Web servers (api-servers) wanted, MinWebservers..MaxWebservers. */
  desiredWebservers: number
  /** Queued + running task instances on the workers' queue at the last sample. */
  backlog: number
  /** Since when the backlog has been 0 (start of the scale-in idle period); absent while busy. */
  idleSince?: Date
  /** Since when web server load has been low enough to remove one; absent otherwise. */
  lowWebserverLoadSince?: Date
  /** The last web server load sample: mean CPU % (of one core) per web server, and open connections at the gateway. */
  webserverLoad?: { cpuPercent: number; activeConnections: number }
  /** When the autoscaler last sampled this environment. */
  sampledAt: Date
}

/** One stored environment: identity, spec, observation and bookkeeping. */
export interface EnvironmentRecord {
  name: string
  arn: string
  /** Short stable id (lowercase hex); names folders, database roles and the web server host. */
  id: string
  createdAt: Date
  spec: EnvironmentSpec
  /** Bumped by every accepted create/update; compared to `observation.observedGeneration`. */
  generation: number
  tags: Record<string, string>
  /** The request behind `generation`; `LastUpdate` is derived from it and the observation. */
  lastUpdateRequest: LastUpdateRequest
  /**
   * The spec before the latest update, when that spec had been applied: what still runs if the
   * update's inputs are refused (then GetEnvironment shows it and the next update starts from
   * it, as MWAA rolls back a failed update).
   */
  lastGoodSpec?: EnvironmentSpec
  /**
   * Index of the block of loopback ports this environment owns (gateway, broker,
   * api-servers); fixed at create so ports survive restarts.
   */
  portBlock: number
  observation: EnvironmentObservation
  /** The autoscaler's latest decisions; absent until it first looked (Celery classes only). */
  scaling?: EnvironmentScaling
  deletionRequestedAt?: Date
  deletedAt?: Date
}
