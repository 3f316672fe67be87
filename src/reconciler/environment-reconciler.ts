/**
 * The reconciler (DESIGN.md decision 3): converges each environment to its spec and is the only
 * writer of its observation (from which the MWAA status is derived by `deriveEnvironmentStatus`).
 *
 * A reconcile of one environment (key = name) loads the record and takes the steps in order —
 * each idempotent, so a crash or restart of the control plane simply resumes:
 *
 *   deletion requested → stop DAG sync and components (gateway included), drop the database, remove the
 *   folder, mark DELETED (purged after the retention period);
 *   otherwise → runtime (built once, shared) → secrets (generated once, sealed) → folders →
 *   database and role → `airflow db migrate` (once per database and Airflow version) → DAG sync
 *   → plan components (+ the gateway process) → driver.apply → gateway upstreams file → observe (process phases + Airflow
 *   health) → one observation write.
 *
 * An update to another AirflowVersion first walks the steps of {@link VersionChangeStep}
 * (prepare, snapshot, migrate), one per pass, then starts the new runtime through the normal
 * steps above; a failure from the migration on rolls back to the snapshot.
 *
 * Keys arrive from API writes (`enqueue`), driver events (a component exited), and a periodic
 * resync of every environment.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import {
  airflowEnvironment,
  apiServerPorts,
  brokerConfig,
  componentLogFile,
  environmentLayout,
  migrateCommand,
  planComponents,
  environmentPorts,
  workerSpec,
  type EnvironmentLayout,
  type EnvironmentSecrets,
  type PlanInput,
} from '../airflow/components.js'
import { fetchAirflowHealth } from '../airflow/health.js'
import {
  dropMetadataDatabase,
  dropMetadataSnapshot,
  ensureMetadataDatabase,
  metadataDatabaseFor,
  metadataSnapshotExists,
  restoreMetadataDatabase,
  snapshotMetadataDatabase,
} from '../airflow/metadata-database.js'
import { RuntimeBuildError, type Runtime, type RuntimeManager } from '../airflow/runtime-manager.js'
import { compareAirflowVersions } from '../domain/airflow-versions.js'
import { inMaintenanceWindow } from '../domain/maintenance.js'
import type {
  ComponentStatus,
  HostEnvironment,
  EnvironmentObservation,
  EnvironmentRecord,
  EnvironmentSpec,
  VersionChange,
  VersionChangeStep,
} from '../domain/environment.js'
import { findEnvironmentClass } from '../domain/environment-classes.js'
import { coerceError } from '../domain/errors.js'
import { desiredWebserverCount, desiredWorkerCount } from '../domain/scaling.js'
import {
  GATEWAY_COMPONENT_NAME,
  gatewayComponentSpec,
  writeUpstreams,
} from '../gateway/gateway-component.js'
import { gatewayListenAddresses } from '../gateway/gateway.js'
import type { Logger } from '../observability/logger.js'
import { PLATFORM_GROUP, type PostgresServer } from '../platform/postgres-server.js'
import { hashComponentSpec, type ComponentState, type Driver } from '../runtime/driver.js'
import { runCommand } from '../lib/run-command.js'
import { failpoint } from '../lib/failpoints.js'
import { KeyUnavailableError, type KeyRing } from '../security/key-ring.js'
import {
  ArtifactError,
  refusedUpdate,
  type ArtifactPreparer,
  type InputsRefusal,
  type PreparedArtifacts,
} from './artifacts.js'
import type { EnvironmentStore } from '../store/environment-store.js'
import { DagSync } from '../storage/dag-sync.js'
import { parseBucketArn, type ObjectStore } from '../storage/object-store.js'
import { WorkQueue, type ProcessResult } from './work-queue.js'
import { ensureEnvironmentPorts } from './environment-ports.js'
import { planWorkers, workerIndex } from './worker-plan.js'
import { planRollout, type RunningComponent } from './rollout.js'

/** Dependencies and settings of the reconciler. */
export interface ReconcilerOptions {
  store: EnvironmentStore
  driver: Driver
  runtimes: RuntimeManager
  /** Address every gateway listens on (`AIRDOCK_PRIVATE_ADDRESS`). */
  privateAddress: string
  /** Address PUBLIC_ONLY gateways also listen on (`AIRDOCK_PUBLIC_ADDRESS`). */
  publicAddress: string
  /** Where gateways reach the control plane to check tokens. */
  controlPlaneUrl: string
  /** Prepares and validates requirements, plugins and startup scripts. */
  artifacts: ArtifactPreparer
  /** Seals environment secrets under the environment's `KmsKey` (or the master key). */
  keyRing: KeyRing
  objectStore: ObjectStore
  postgres: PostgresServer
  logger: Logger
  /** `$AIRDOCK_DATA_DIR/environments`. */
  environmentsDir: string
  componentPortBase: number
  region: string
  hostPath: string
  /** Host variables Airflow processes inherit (CA bundles, proxies, TZ). */
  passThroughEnv: Record<string, string>
  redisServer: string
  dagSyncIntervalMs: number
  resyncIntervalMs: number
  deletedRetentionMs: number
  /**
   * How long a create, an update, a version change's start or a maintenance may take to become
   * healthy (`AIRDOCK_CREATE_TIMEOUT_MS`), in ms.
   */
  createTimeoutMs: number
  /** Most environments reconciled at once. */
  concurrency?: number
  /**
   * How long a stopped Celery worker may take to finish its running tasks (scale-in drains and
   * GRACEFUL replacement) before SIGKILL, in ms. MWAA: 12 h.
   */
  workerDrainTimeoutMs: number
}

/**
 * Grace period of workers replaced FORCED, and of every process when an environment is deleted
 * or the control plane stops them all, in ms: Celery gets a moment for its warm shutdown, then the
 * rest is killed (the interrupted tasks are retried by Airflow's own rules).
 */
export const FORCED_STOP_GRACE_MS = 5_000

/** A restarted scheduler counts as ready for the rolling restart after this long, in ms. */
const SCHEDULER_WARMUP_MS = 15_000

/** Requeue period while an environment is converging, in ms. */
const CONVERGING_REQUEUE_MS = 1_000

/** How long `airflow db migrate` may run, in ms. */
const MIGRATE_TIMEOUT_MS = 600_000

/** Largest stdout or stderr the CLI endpoint returns, in bytes (MWAA's 6 MB response cap). */
const CLI_OUTPUT_CAP_BYTES = 6 * 1024 * 1024

/** Generates the per-environment secrets (once; they are sealed before being stored). */
function generateSecrets(): EnvironmentSecrets {
  return {
    fernetKey: randomBytes(32).toString('base64url') + '=',
    jwtSecret: randomBytes(64).toString('base64url'),
    apiSecretKey: randomBytes(32).toString('base64url'),
    databasePassword: randomBytes(24).toString('base64url'),
    brokerPassword: randomBytes(24).toString('base64url'),
  }
}

/** Writes `content` to `file` (with `mode`) unless it already holds exactly that. */
async function writeIfChanged(file: string, content: string, mode: number): Promise<void> {
  if ((await readFile(file, 'utf8').catch(() => '')) !== content) {
    await writeFile(file, content, { mode })
  }
}

/** The last non-empty line of a log file (at most 300 characters), or undefined. */
async function lastLogLine(file: string): Promise<string | undefined> {
  try {
    const handle = await open(file, 'r')
    try {
      const { size } = await handle.stat()
      const length = Math.min(size, 8192)
      const buffer = Buffer.alloc(length)
      await handle.read(buffer, 0, length, size - length)
      const lines = buffer
        .toString('utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
      return lines.at(-1)?.slice(0, 300)
    } finally {
      await handle.close()
    }
  } catch {
    // No log yet: nothing to add to the message.
    return undefined
  }
}

/** Converges environments. Start with `start()`, stop with `close()`. */
export class EnvironmentReconciler {
  private readonly queue: WorkQueue
  private readonly syncs = new Map<string, { sync: DagSync; source: string }>()
  private resyncTimer?: NodeJS.Timeout
  private readonly log: Logger

  constructor(private readonly options: ReconcilerOptions) {
    this.log = options.logger.child({ part: 'reconciler' })
    this.queue = new WorkQueue((name) => this.reconcileSafely(name), options.concurrency ?? 4)
    options.driver.on('component:exited', (event) => {
      void this.nameForGroup(event.groupId).then((name) => name && this.queue.add(name))
    })
  }

  /** Enqueues every stored environment and starts the periodic resync. */
  async start(): Promise<void> {
    await this.resync()
    this.resyncTimer = setInterval(() => void this.resync(), this.options.resyncIntervalMs)
    this.resyncTimer.unref()
  }

  /** Asks for a reconcile of one environment soon. */
  enqueue(name: string): void {
    this.queue.add(name)
  }

  /**
   * Stops reconciling. DAG syncs stop with the control plane; the components (gateways
   * included) keep running unless `stopComponents` (they are adopted by the next start).
   */
  async close(options: { stopComponents: boolean }): Promise<void> {
    if (this.resyncTimer) clearInterval(this.resyncTimer)
    await this.queue.close()
    await Promise.all([...this.syncs.values()].map((s) => s.sync.stop()))
    this.syncs.clear()
    if (options.stopComponents) {
      for (const group of this.options.driver.groups()) {
        if (group !== PLATFORM_GROUP) {
          await this.options.driver.stopGroup(group, { maxStopGracePeriodMs: FORCED_STOP_GRACE_MS })
        }
      }
    }
  }

  /**
   * Runs `airflow <argv>` in an environment's configuration (the CLI endpoint), without a
   * shell. The caller has checked `argv` against MWAA's allow-list.
   * @param record - with the spec that runs (`lastGoodSpec` after a refused update)
   * @param timeoutMs - the command is killed (SIGKILL to its group) after this long
   * @returns its exit code and output (each capped at 6 MB)
   * @throws Error when the environment's runtime or secrets are not there yet
   */
  async runAirflowCli(
    record: EnvironmentRecord,
    argv: string[],
    timeoutMs: number,
  ): Promise<{ code: number | null; stdout: Buffer; stderr: Buffer }> {
    const { input, runtime } = await this.existingInput(record)
    // MWAA runs CLI commands in the web server's context: its packages, plugins and startup
    // exports (the inputs of what runs are cached, so this prepares nothing again).
    const artifacts = await this.prepareInputs(record, input, runtime, { validateImports: false })
    const env = airflowEnvironment({ ...input, artifacts }, 'webserver')
    const result = await runCommand(runtime.airflow, argv, {
      env,
      cwd: input.layout.homeDir,
      timeoutMs,
      maxOutputBytes: CLI_OUTPUT_CAP_BYTES,
    })
    return { code: result.code, stdout: result.stdout, stderr: result.stderr }
  }

  /**
   * `airdock validate`: prepares `spec`'s requirements, plugins and startup script for the
   * existing environment `record` and imports its plugins and DAGs with them, exactly as an
   * update would, without applying anything.
   * @throws ArtifactError naming what fails; Error when the environment is not set up yet
   */
  async validateInputs(record: EnvironmentRecord, spec: EnvironmentSpec): Promise<void> {
    const trial = { ...record, spec }
    const { input, runtime } = await this.existingInput(trial)
    await this.prepareInputs(trial, input, runtime, { validateImports: true, trial: true })
  }

  /**
   * The plan input of an environment that is set up (runtime built, secrets generated), for
   * work beside the reconcile (the CLI endpoint, `airdock validate`).
   * @throws Error when it is not set up yet
   */
  private async existingInput(
    record: EnvironmentRecord,
  ): Promise<{ input: PlanInput; runtime: Runtime }> {
    const version = record.spec.airflowVersion
    const runtime =
      (await this.pinnedRuntime(record, version)) ?? (await this.options.runtimes.find(version))
    const secrets = await this.secretsFor(record)
    if (!runtime || !secrets) throw new Error(`environment ${record.name} is not set up yet`)
    const layout = environmentLayout(this.options.environmentsDir, record.id)
    return { input: this.planInput(record, layout, runtime, secrets), runtime }
  }

  /** Prepares (and with `validateImports`, checks) `record`'s inputs for `input`. */
  private prepareInputs(
    record: EnvironmentRecord,
    input: PlanInput,
    runtime: Runtime,
    options: { validateImports: boolean; trial?: boolean },
  ): Promise<PreparedArtifacts> {
    return this.options.artifacts.prepare({
      record,
      runtime,
      layout: input.layout,
      envFor: (kind, artifacts) => airflowEnvironment({ ...input, artifacts }, kind),
      ...options,
    })
  }

  /** Everything the planner needs for `record` with these runtime and secrets. */
  private planInput(
    record: EnvironmentRecord,
    layout: EnvironmentLayout,
    runtime: Runtime,
    secrets: EnvironmentSecrets,
  ): PlanInput {
    const db = metadataDatabaseFor(record.id)
    const host = record.observation.host ?? this.currentHost()
    return {
      environmentName: record.name,
      environmentId: record.id,
      spec: record.spec,
      layout,
      runtime,
      ports: environmentPorts(record, this.options.componentPortBase),
      secrets,
      database: { host: this.options.postgres.host, port: this.options.postgres.port, ...db },
      workers: [],
      webservers: desiredWebserverCount(record.spec, record.scaling),
      workerDrainTimeoutMs: this.options.workerDrainTimeoutMs,
      hostPath: host.path,
      passThroughEnv: host.passThroughEnv,
      region: this.options.region,
      redisServer: host.redisServer,
    }
  }

  /** What components inherit from this control plane's host (for a record without a snapshot). */
  private currentHost(): HostEnvironment {
    return {
      path: this.options.hostPath,
      passThroughEnv: this.options.passThroughEnv,
      redisServer: this.options.redisServer,
      nodeExecutable: process.execPath,
    }
  }

  /**
   * Records what `record`'s components inherit from the host (at its first reconcile; kept
   * after that, so a restart from another shell changes no spec) and the ports they use,
   * checked and moved when another program took one (`environment-ports.ts`). Updates
   * `record.observation` in place; one write, only when something changed.
   * @throws NoFreePortError when a taken port has nowhere to move
   */
  private async ensureHostAndPorts(record: EnvironmentRecord): Promise<void> {
    const others = async () =>
      (await this.options.store.all()).filter((r) => r.name !== record.name && !r.deletedAt)
    const assignment = await ensureEnvironmentPorts(
      record,
      this.options.driver.observe(record.id),
      others,
      this.options.componentPortBase,
    )
    if (!assignment.changed && record.observation.host) return
    if (assignment.moved.length > 0) {
      this.log.warn({ environment: record.name, moved: assignment.moved }, 'ports moved')
    }
    record.observation = {
      ...record.observation,
      ports: assignment.ports,
      host: record.observation.host ?? this.currentHost(),
    }
    await this.options.store.writeObservation(record.name, record.observation)
  }

  /**
   * Opens an environment's secrets.
   * @throws KeyUnavailableError when the KMS key that sealed them was deleted or disabled
   */
  async secretsFor(record: EnvironmentRecord): Promise<EnvironmentSecrets | undefined> {
    const sealed = await this.options.store.getSealedSecrets(record.name)
    return sealed ? this.options.keyRing.openJson<EnvironmentSecrets>(sealed) : undefined
  }

  private async resync(): Promise<void> {
    try {
      for (const record of await this.options.store.all()) this.queue.add(record.name)
    } catch (err) {
      this.log.error({ err }, 'resync failed')
    }
  }

  private async nameForGroup(groupId: string): Promise<string | undefined> {
    return this.options.store.nameForId(groupId).catch(() => undefined)
  }

  private async reconcileSafely(name: string): Promise<ProcessResult> {
    const startedAt = Date.now()
    try {
      const result = await this.reconcile(name)
      this.log.debug({ environment: name, durationMs: Date.now() - startedAt }, 'reconciled')
      return result
    } catch (err) {
      const error = coerceError(err)
      this.log.warn({ environment: name, err: error }, 'reconcile failed, retrying')
      await this.recordRetry(name, error).catch((e: unknown) =>
        this.log.error({ environment: name, err: coerceError(e) }, 'could not record the failure'),
      )
      return { requeueAfterMs: 3_000 }
    }
  }

  /**
   * Makes a failing step visible: the reason goes into the observation (LastUpdate.Error while
   * the environment is not healthy), and a create that keeps failing past its timeout ends
   * CREATE_FAILED instead of retrying forever.
   */
  private async recordRetry(name: string, error: Error): Promise<void> {
    const record = await this.options.store.get(name)
    if (!record || record.deletionRequestedAt || record.deletedAt) return
    const message = `Retrying after an error: ${error.message}`
    if (
      record.observation.phase === 'creating' &&
      Date.now() - record.createdAt.getTime() > this.options.createTimeoutMs
    ) {
      await this.fail(record, 'CREATE_TIMEOUT', message)
      return
    }
    // A refusal's code and message say which spec runs (`refusedUpdate`): never overwritten.
    if (refusedUpdate(record)) return
    if (record.observation.phase === 'creating' || record.observation.phase === 'provisioned') {
      await this.options.store.writeObservation(name, {
        ...record.observation,
        healthy: false,
        failureCode:
          error instanceof KeyUnavailableError ? 'KMS_KEY_UNAVAILABLE' : 'RECONCILE_ERROR',
        message,
      })
    }
  }

  private async reconcile(name: string): Promise<ProcessResult> {
    const { store } = this.options
    let record = await store.get(name)
    if (!record) return {}
    if (record.deletedAt) {
      if (Date.now() - record.deletedAt.getTime() >= this.options.deletedRetentionMs) {
        await store.purge(name)
        return {}
      }
      return { requeueAfterMs: this.options.deletedRetentionMs }
    }
    if (record.deletionRequestedAt) return this.tearDown(record)
    if (record.observation.phase === 'create-failed') return {}
    await this.ensureHostAndPorts(record)

    // An update whose inputs were refused changes nothing: everything below works on the spec
    // that runs (the last applied one), never on the refused one, until the next update.
    const refusal = refusedUpdate(record)
    if (refusal && record.lastGoodSpec) record = { ...record, spec: record.lastGoodSpec }
    const layout = environmentLayout(this.options.environmentsDir, record.id)
    const change = refusal ? undefined : await this.versionChangeFor(record)
    if (change && change.step !== 'starting') return this.changeVersion(record, layout, change)
    let runtime: Runtime
    try {
      runtime = await this.runtimeFor(record)
    } catch (err) {
      if (err instanceof RuntimeBuildError && change) {
        return this.rollBack(record, change, `its runtime could not be built: ${err.message}`)
      }
      if (err instanceof RuntimeBuildError) {
        return this.fail(
          record,
          'RUNTIME_BUILD_FAILED',
          `The Airflow ${record.spec.airflowVersion} runtime could not be built: ${err.message}`,
        )
      }
      throw err
    }
    const creating = record.observation.phase === 'creating'
    if (creating) failpoint('create.after-runtime')
    const secrets = await this.ensureSecrets(record)
    if (creating) failpoint('create.after-secrets')
    await this.ensureFolders(layout, record)
    const input = this.planInput(record, layout, runtime, secrets)
    const db = metadataDatabaseFor(record.id)
    if (record.observation.migratedAirflowVersion !== runtime.airflowVersion) {
      await ensureMetadataDatabase(this.options.postgres.adminUrl, db, secrets.databasePassword)
      if (creating) failpoint('create.after-database')
      try {
        await this.migrate(input)
      } catch (err) {
        if (record.observation.phase === 'creating') {
          return this.fail(record, 'DATABASE_MIGRATION_FAILED', coerceError(err).message)
        }
        throw err
      }
      record.observation.migratedAirflowVersion = runtime.airflowVersion
      await this.options.store.writeObservation(record.name, record.observation)
      if (creating) failpoint('create.after-migrate')
    }
    await this.ensureDagSync(record, layout)
    const hybrid = findEnvironmentClass(record.spec.environmentClass)?.hybrid === true
    if (!hybrid) await writeIfChanged(layout.brokerConfigFile, brokerConfig(input), 0o600)
    // Validate before applying: requirements, plugins and startup script are prepared, and
    // every plugin and DAG imported with them, before any component sees them.
    const applying =
      !refusal &&
      (record.observation.phase === 'creating' ||
        record.observation.observedGeneration < record.generation)
    try {
      input.artifacts = await this.prepareInputs(record, input, runtime, {
        validateImports: applying,
      })
    } catch (err) {
      if (!(err instanceof ArtifactError)) throw err
      if (record.observation.phase === 'creating') return this.fail(record, err.code, err.message)
      if (change) return this.rollBack(record, change, err.message)
      if (record.observation.maintenance) return this.abandonMaintenance(record, err.message)
      // UPDATE_FAILED; the next pass reconciles the spec that runs.
      if (applying) return this.failUpdate(record, err.code, err.message)
      // The inputs of what runs stopped working (e.g. a startup script after a restart): the
      // components keep running as they are, and the environment says why it is unhealthy.
      const states = this.options.driver.observe(record.id)
      const apiServers = apiServerPorts(input).filter((a) => states.some((s) => s.name === a.name))
      return this.observe(record, layout, states, apiServers, [], {
        code: err.code,
        message: err.message,
        updateFailed: refusal !== undefined,
      })
    }
    if (applying && !creating) failpoint('update.after-inputs')

    const gateway = gatewayComponentSpec({
      port: input.ports.gateway,
      hosts: gatewayListenAddresses(
        record.spec.webserverAccessMode,
        this.options.privateAddress,
        this.options.publicAddress,
      ),
      controlPlaneUrl: this.options.controlPlaneUrl,
      environment: record.name,
      upstreamsFile: layout.gatewayUpstreamsFile,
      logFile: componentLogFile(layout, GATEWAY_COMPONENT_NAME),
      hostPath: input.hostPath,
      nodeExecutable: (record.observation.host ?? this.currentHost()).nodeExecutable,
    })
    const { driver } = this.options
    const before = driver.observe(record.id)
    const readiness = this.rollingReadiness(before, record.observation.components)
    // Web servers never scale in while one of them is not serving (a rolling or crash restart
    // under way): the one left could be the only one answering.
    const apiServersNow = readiness.filter(
      (r) => r.component === 'api-server' && r.phase !== 'stopping',
    )
    if (apiServersNow.some((r) => !r.ready)) {
      input.webservers = Math.max(input.webservers, apiServersNow.length)
    }
    const plan = this.planWorkerSet(record, input, before)
    input.workers = plan.indices
    const apiServers = apiServerPorts(input)
    // Api-servers about to be stopped leave the gateway's rotation first.
    await this.writeGatewayUpstreams(layout, apiServers, before)
    // FORCED belongs to the update that asked for it: only while that update is converging.
    const forced =
      plan.replaced.length > 0 &&
      record.lastUpdateRequest.workerReplacementStrategy === 'FORCED' &&
      record.observation.observedGeneration < record.generation
    if (plan.replaced.length > 0) {
      this.log.info(
        {
          environment: record.name,
          replaced: plan.replaced,
          strategy: forced ? 'FORCED' : 'GRACEFUL',
        },
        'replacing out-of-date workers',
      )
    }
    const rollout = planRollout([...planComponents(input), gateway], readiness, (name) =>
      driver.specOf(record.id, name),
    )
    if (rollout.held.length > 0) {
      this.log.debug({ environment: record.name, waiting: rollout.held }, 'rolling restart')
    }
    const states = await driver.apply(
      record.id,
      rollout.specs,
      forced ? { maxStopGracePeriodMs: FORCED_STOP_GRACE_MS } : {},
    )
    await this.writeGatewayUpstreams(layout, apiServers, states)
    if (record.observation.phase === 'creating') failpoint('create.after-components')
    else if (record.observation.observedGeneration < record.generation) {
      failpoint('update.after-rollout-step')
    }
    return this.observe(record, layout, states, apiServers, rollout.held, refusal)
  }

  /**
   * The runtime an environment's components run: the one it is pinned to
   * (`observation.runtimeKey`) while that is still built for its version, so a newer lock for
   * the same version (a runtime patch) waits for the maintenance window; inside the window an
   * environment whose latest update converged starts maintenance (status MAINTENANCE) onto the
   * current runtime. A create, a version change, or a pinned runtime that is gone get the current
   * one, pinned.
   * @throws RuntimeBuildError when the current runtime cannot be built
   */
  private async runtimeFor(record: EnvironmentRecord): Promise<Runtime> {
    const { observation, spec } = record
    const { runtimes } = this.options
    const pinned = observation.runtimeKey
    const current = runtimes.describe(spec.airflowVersion)
    if (!observation.maintenance && pinned && pinned !== current.key) {
      const old = await this.pinnedRuntime(record, spec.airflowVersion)
      if (old) {
        const abandoned = observation.failedRuntimeKey === current.key
        const description = `runtime patch ${pinned} → ${current.key}${abandoned ? ' (abandoned: it did not come up)' : ''}`
        // Never during an update, nor after a failed one (its refusal must stay recorded).
        let due =
          observation.phase === 'provisioned' &&
          observation.observedGeneration >= record.generation &&
          !abandoned &&
          inMaintenanceWindow(spec.weeklyMaintenanceWindowStart, new Date())
        if (due) {
          // Built before maintenance starts, so a patch that cannot be built changes nothing.
          try {
            await runtimes.ensure(spec.airflowVersion)
          } catch (err) {
            if (!(err instanceof RuntimeBuildError)) throw err
            this.log.error({ environment: record.name, err }, 'runtime patch could not be built')
            record.observation = { ...observation, failedRuntimeKey: current.key }
            due = false
          }
        }
        if (!due) {
          if (record.observation.pendingMaintenance !== description) {
            record.observation = { ...record.observation, pendingMaintenance: description }
            await this.options.store.writeObservation(record.name, record.observation)
            this.log.info(
              { environment: record.name, maintenance: description },
              'maintenance pending until the weekly window',
            )
          }
          return old
        }
        record.observation = {
          ...observation,
          maintenance: { description, startedAt: new Date(), toRuntimeKey: current.key },
        }
        delete record.observation.pendingMaintenance
        await this.options.store.writeObservation(record.name, record.observation)
        this.log.info({ environment: record.name, maintenance: description }, 'maintenance started')
        failpoint('maintenance.after-start')
      }
    }
    const runtime = await this.ensureRuntime(record)
    if (!record.observation.maintenance && record.observation.runtimeKey !== runtime.key) {
      record.observation = { ...record.observation, runtimeKey: runtime.key }
      delete record.observation.pendingMaintenance
      await this.options.store.writeObservation(record.name, record.observation)
    }
    return runtime
  }

  /** The runtime the environment is pinned to, when it is built and runs Airflow `version`. */
  private async pinnedRuntime(
    record: EnvironmentRecord,
    version: string,
  ): Promise<Runtime | undefined> {
    const key = record.observation.runtimeKey
    const runtime = key ? await this.options.runtimes.findByKey(key) : undefined
    return runtime?.airflowVersion === version ? runtime : undefined
  }

  /**
   * The Airflow version change under way, or a new one when the spec asks for another version
   * than the metadata database has (an update to another AirflowVersion; the service refused the
   * moves MWAA refuses). Only for a provisioned environment.
   */
  private async versionChangeFor(record: EnvironmentRecord): Promise<VersionChange | undefined> {
    const { observation } = record
    if (observation.phase !== 'provisioned') return undefined
    if (observation.versionChange) return observation.versionChange
    const from = observation.migratedAirflowVersion
    const to = record.spec.airflowVersion
    // A generation that failed is never changed to again (only a new update starts one).
    if (!from || from === to || observation.failedGeneration === record.generation) {
      return undefined
    }
    const change: VersionChange = {
      generation: record.generation,
      fromVersion: from,
      toVersion: to,
      step: 'preparing',
      stepStartedAt: new Date(),
    }
    this.log.info({ environment: record.name, from, to }, 'Airflow version change started')
    record.observation = { ...observation, versionChange: change, progressing: true }
    await this.options.store.writeObservation(record.name, record.observation)
    return change
  }

  /**
   * Takes one step of a version change (every step but `starting`, which is the normal
   * reconcile on the new runtime). Each step is idempotent, so a control-plane restart resumes.
   */
  private async changeVersion(
    record: EnvironmentRecord,
    layout: EnvironmentLayout,
    change: VersionChange,
  ): Promise<ProcessResult> {
    const { postgres, runtimes } = this.options
    const db = metadataDatabaseFor(record.id)
    const from = change.fromVersion
    const to = change.toVersion
    switch (change.step) {
      case 'preparing': {
        // Nothing running is touched yet: a runtime that cannot be built, or inputs (e.g. a
        // requirements.txt against the new version's lock) that do not work with it, refuse
        // the update and the old version keeps serving.
        let runtime: Runtime
        try {
          runtime = await this.ensureRuntime(record)
        } catch (err) {
          if (!(err instanceof RuntimeBuildError)) throw err
          return this.failUpdate(
            record,
            'VERSION_CHANGE_FAILED',
            `The Airflow ${to} runtime could not be built: ${err.message}`,
          )
        }
        const secrets = await this.ensureSecrets(record)
        const input = this.planInput(record, layout, runtime, secrets)
        try {
          // The import check waits for the migrated database (the starting step): Airflow
          // refuses to run against a schema of another version. The result is cached, so the
          // starting step only adds the check.
          await this.prepareInputs(record, input, runtime, { validateImports: false })
        } catch (err) {
          if (!(err instanceof ArtifactError)) throw err
          return this.failUpdate(record, err.code, `With Airflow ${to}: ${err.message}`)
        }
        return this.nextVersionChangeStep(record, change, 'snapshotting')
      }
      case 'snapshotting':
        // MWAA terminates every running task for a version change (reference §4).
        if (!(await this.stopAirflowComponents(record, layout))) {
          return { requeueAfterMs: CONVERGING_REQUEUE_MS }
        }
        try {
          await snapshotMetadataDatabase(postgres.adminUrl, db)
        } catch (err) {
          // The database is untouched: the old version starts again (the last good spec).
          return this.failUpdate(
            record,
            'VERSION_CHANGE_FAILED',
            `The metadata database snapshot failed: ${coerceError(err).message}`,
          )
        }
        this.log.info(
          { environment: record.name, snapshot: db.snapshot },
          'metadata snapshot taken',
        )
        return this.nextVersionChangeStep(record, change, 'migrating')
      case 'migrating': {
        // An upgrade runs the new runtime's migrations; a downgrade undoes the old (newer)
        // runtime's, which only it knows.
        const upgrade = compareAirflowVersions(to, from) > 0
        try {
          const runtime = upgrade
            ? await runtimes.ensure(to)
            : ((await this.pinnedRuntime(record, from)) ?? (await runtimes.ensure(from)))
          const input = this.planInput(record, layout, runtime, await this.ensureSecrets(record))
          await this.migrate(input, upgrade ? undefined : to)
        } catch (err) {
          return this.rollBack(record, change, coerceError(err).message)
        }
        record.observation.migratedAirflowVersion = to
        return this.nextVersionChangeStep(record, change, 'starting')
      }
      case 'rolling-back': {
        if (!(await metadataSnapshotExists(postgres.adminUrl, db))) {
          // Nothing to restore (it cannot happen unless the snapshot was dropped by hand): the
          // new version stays, and the update says so.
          return this.failUpdate(
            record,
            'VERSION_CHANGE_ROLLBACK_IMPOSSIBLE',
            `Airflow ${to} did not come up (${change.reason ?? 'unknown reason'}), and there is no snapshot of the metadata database to roll back to Airflow ${from} with.`,
          )
        }
        if (!(await this.stopAirflowComponents(record, layout))) {
          return { requeueAfterMs: CONVERGING_REQUEUE_MS }
        }
        await restoreMetadataDatabase(postgres.adminUrl, db)
        await this.failUpdate(
          record,
          'VERSION_CHANGE_ROLLED_BACK',
          `Airflow ${to} did not come up: ${change.reason ?? 'unknown reason'}. Rolled back to Airflow ${from}, with the metadata database restored from the snapshot taken before the change.`,
          { migratedAirflowVersion: from },
        )
        await dropMetadataSnapshot(postgres.adminUrl, db)
        this.log.warn({ environment: record.name, from, to }, 'Airflow version change rolled back')
        // The next pass runs the last good spec on the old runtime.
        return { requeueAfterMs: 0 }
      }
      case 'starting':
        throw new Error('the starting step is the normal reconcile')
    }
  }

  /** Moves a version change to its next step (one observation write). */
  private async nextVersionChangeStep(
    record: EnvironmentRecord,
    change: VersionChange,
    step: VersionChangeStep,
  ): Promise<ProcessResult> {
    const observation: EnvironmentObservation = {
      ...record.observation,
      versionChange: { ...change, step, stepStartedAt: new Date() },
      healthy: false,
      message: `Changing Airflow ${change.fromVersion} to ${change.toVersion}: ${step}`,
    }
    await this.options.store.writeObservation(record.name, observation)
    this.log.info({ environment: record.name, step }, 'Airflow version change step')
    failpoint('version-change.after-step')
    return { requeueAfterMs: 0 }
  }

  /**
   * Gives up a maintenance whose runtime does not work (crash loop, time limit, or inputs refused
   * with it): the pinned runtime is still the old one, so the next pass goes back to it; the
   * patch is not tried again.
   */
  private async abandonMaintenance(
    record: EnvironmentRecord,
    reason: string,
  ): Promise<ProcessResult> {
    const { maintenance } = record.observation
    const observation: EnvironmentObservation = {
      ...record.observation,
      ...(maintenance ? { failedRuntimeKey: maintenance.toRuntimeKey } : {}),
    }
    delete observation.maintenance
    await this.options.store.writeObservation(record.name, observation)
    this.log.warn(
      { environment: record.name, maintenance: maintenance?.description, reason },
      'maintenance failed; back to the pinned runtime',
    )
    return { requeueAfterMs: 0 }
  }

  /** Starts rolling a version change back (status ROLLING_BACK), saying why. */
  private rollBack(
    record: EnvironmentRecord,
    change: VersionChange,
    reason: string,
  ): Promise<ProcessResult> {
    this.log.warn({ environment: record.name, reason }, 'Airflow version change failed')
    return this.nextVersionChangeStep(record, { ...change, reason }, 'rolling-back')
  }

  /**
   * Ends the latest update as UPDATE_FAILED (and any version change with it), saying why. The
   * one writer of a failed update: with a refusal code (`refusedUpdate`) the next pass runs the
   * last good spec.
   * @param changes - more observation fields to write with it
   */
  private async failUpdate(
    record: EnvironmentRecord,
    code: string,
    message: string,
    changes: Partial<EnvironmentObservation> = {},
  ): Promise<ProcessResult> {
    this.log.warn({ environment: record.name, code, message }, 'update failed')
    const observation: EnvironmentObservation = {
      ...record.observation,
      ...changes,
      failedGeneration: record.generation,
      failureCode: code,
      message: message.slice(0, 1024),
    }
    delete observation.versionChange
    await this.options.store.writeObservation(record.name, observation)
    return { requeueAfterMs: 0 }
  }

  /**
   * Stops every Airflow component of an environment, FORCED (a version change ends running
   * tasks, as MWAA's does); the gateway stays, with no upstream.
   * @returns true once they are all gone
   */
  private async stopAirflowComponents(
    record: EnvironmentRecord,
    layout: EnvironmentLayout,
  ): Promise<boolean> {
    await writeUpstreams(layout.gatewayUpstreamsFile, [])
    const gateway = this.options.driver.specOf(record.id, GATEWAY_COMPONENT_NAME)
    const states = await this.options.driver.apply(record.id, gateway ? [gateway] : [], {
      maxStopGracePeriodMs: FORCED_STOP_GRACE_MS,
    })
    return states.every((s) => s.name === GATEWAY_COMPONENT_NAME)
  }

  /**
   * What runs now, with readiness for the rolling restart: an api-server answered its health
   * check at the last observation (same process; observations are at most a second old while
   * converging, so no second probe is made here); a scheduler has run past its warm-up; anything
   * else is running.
   */
  private rollingReadiness(
    states: ComponentState[],
    observed: ComponentStatus[],
  ): RunningComponent[] {
    const now = Date.now()
    return states.map((s) => {
      let ready = s.phase === 'running'
      if (ready && s.component === 'scheduler') {
        ready = now - (s.startedAt?.getTime() ?? now) >= SCHEDULER_WARMUP_MS
      } else if (ready && s.component === 'api-server') {
        const last = observed.find((o) => o.name === s.name)
        ready = last?.pid === s.pid && last?.healthy === true
      }
      return { name: s.name, component: s.component, specHash: s.specHash, phase: s.phase, ready }
    })
  }

  /** The Celery workers to run now (none for mw1.micro): see `worker-plan.ts`. */
  private planWorkerSet(
    record: EnvironmentRecord,
    input: PlanInput,
    observed: ComponentState[],
  ): { indices: number[]; replaced: number[] } {
    if (findEnvironmentClass(record.spec.environmentClass)?.hybrid === true) {
      return { indices: [], replaced: [] }
    }
    const workers = observed.flatMap((state) => {
      const index = workerIndex(state.name)
      if (index === undefined) return []
      const upToDate = hashComponentSpec(workerSpec(input, index)) === state.specHash
      return [{ index, phase: state.phase, upToDate }]
    })
    return planWorkers(workers, desiredWorkerCount(record.spec, record.scaling))
  }

  /** Points the gateway at the desired api-servers that are up (running or starting). */
  private async writeGatewayUpstreams(
    layout: EnvironmentLayout,
    apiServers: { name: string; port: number }[],
    states: ComponentState[],
  ): Promise<void> {
    const up = apiServers.filter((a) =>
      states.some((s) => s.name === a.name && (s.phase === 'running' || s.phase === 'starting')),
    )
    await writeUpstreams(
      layout.gatewayUpstreamsFile,
      up.map((a) => ({ host: '127.0.0.1', port: a.port })),
    )
  }

  private async ensureRuntime(record: EnvironmentRecord): Promise<Runtime> {
    const version = record.spec.airflowVersion
    const found = await this.options.runtimes.find(version)
    if (found) return found
    // Progress goes into the observation while creating, at most every 2 s. The writes are
    // chained and awaited before returning, so none can land after (and undo) a later write.
    let lastWrite = 0
    let writes = Promise.resolve()
    try {
      return await this.options.runtimes.ensure(version, (line) => {
        if (Date.now() - lastWrite < 2_000 || record.observation.phase !== 'creating') return
        lastWrite = Date.now()
        const observation = {
          ...record.observation,
          message: `Building the Airflow ${version} runtime: ${line.slice(0, 200)}`,
        }
        writes = writes
          .then(() => this.options.store.writeObservation(record.name, observation))
          .catch((err: unknown) => this.log.warn({ err }, 'could not record build progress'))
      })
    } finally {
      await writes
    }
  }

  private async ensureSecrets(record: EnvironmentRecord): Promise<EnvironmentSecrets> {
    const existing = await this.secretsFor(record)
    if (existing) return existing
    const sealed = await this.options.store.putSealedSecretsOnce(
      record.name,
      await this.options.keyRing.sealJson(generateSecrets(), record.spec.kmsKey),
    )
    return this.options.keyRing.openJson<EnvironmentSecrets>(sealed)
  }

  private async ensureFolders(layout: EnvironmentLayout, record: EnvironmentRecord): Promise<void> {
    for (const dir of [
      layout.homeDir,
      layout.dagsDir,
      layout.pluginsDir,
      layout.logsDir,
      layout.componentLogsDir,
      layout.brokerDir,
    ]) {
      await mkdir(dir, { recursive: true, mode: 0o750 })
    }
    await writeIfChanged(
      layout.identityFile,
      JSON.stringify({ name: record.name, arn: record.arn }) + '\n',
      0o644,
    )
    const marker = '# airdock: configuration comes from AIRFLOW__* environment variables.\n'
    await writeIfChanged(layout.configFile, marker, 0o600)
    // SimpleAuthManager needs a password for its one configured user; nobody ever gets it (the
    // gateway refuses password logins: the way in is CreateWebLoginToken), so it is a throwaway
    // value written once and kept nowhere else.
    await writeFile(
      layout.passwordsFile,
      JSON.stringify({ admin: randomBytes(32).toString('base64url') }),
      { mode: 0o600, flag: 'wx' },
    ).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err
    })
  }

  /**
   * Runs `airflow db migrate` (or with `downgradeTo`, `airflow db downgrade`); its output goes to
   * `logs/components/db-migrate.log`.
   * @throws Error naming the log when the command fails
   */
  private async migrate(input: PlanInput, downgradeTo?: string): Promise<void> {
    const { command, args, env } = migrateCommand(input, downgradeTo)
    const logFile = componentLogFile(input.layout, 'db-migrate')
    const { code } = await runCommand(command, args, {
      env,
      cwd: input.layout.homeDir,
      timeoutMs: MIGRATE_TIMEOUT_MS,
      logFile,
      appendLog: true,
      maxOutputBytes: 0,
    })
    if (code !== 0) {
      throw new Error(`airflow ${args.join(' ')} failed (exit ${code}); see ${logFile}`)
    }
    this.log.info({ environment: input.environmentName }, 'metadata database migrated')
  }

  private async ensureDagSync(record: EnvironmentRecord, layout: EnvironmentLayout): Promise<void> {
    const source = `${record.spec.sourceBucketArn}|${record.spec.dagS3Path}`
    const current = this.syncs.get(record.id)
    if (current?.source === source) return
    if (current) await current.sync.stop()
    const sync = new DagSync({
      store: this.options.objectStore,
      bucket: parseBucketArn(record.spec.sourceBucketArn),
      prefix: record.spec.dagS3Path,
      targetDir: layout.dagsDir,
      manifestFile: layout.dagSyncManifestFile,
      logger: this.log.child({ environment: record.name, part: 'dag-sync' }),
      intervalMs: this.options.dagSyncIntervalMs,
      // The environment's own log of its DAG source: a missing bucket or DagS3Path folder, its
      // return, and every applied change set (beside the component logs `airdock status` names).
      eventLogFile: componentLogFile(layout, 'dag-sync'),
    })
    try {
      await sync.syncOnce()
    } catch (err) {
      this.log.warn({ environment: record.name, err: coerceError(err) }, 'first DAG sync failed')
    }
    sync.start()
    this.syncs.set(record.id, { sync, source })
  }

  private async observe(
    record: EnvironmentRecord,
    layout: EnvironmentLayout,
    states: ComponentState[],
    apiServers: { name: string; port: number }[],
    rollingHeld: string[] = [],
    refused?: InputsRefusal,
  ): Promise<ProcessResult> {
    const healthByApiServer = new Map<string, boolean>()
    // Until one api-server answers, Airflow's view of the other components is unknown.
    let airflowUnhealthy: string[] | undefined
    for (const a of apiServers) {
      const health = await fetchAirflowHealth(`http://127.0.0.1:${a.port}`)
      healthByApiServer.set(a.name, health.reachable)
      if (health.reachable) airflowUnhealthy = health.unhealthy
    }
    const components: ComponentStatus[] = states.map((s) => ({
      name: s.name,
      component: s.component,
      phase: s.phase,
      pid: s.pid,
      restarts: s.restarts,
      ...(s.component === 'api-server'
        ? { healthy: healthByApiServer.get(s.name) ?? false }
        : airflowUnhealthy
          ? { healthy: s.phase === 'running' && !airflowUnhealthy.includes(s.component) }
          : {}),
      ...(s.message ? { message: s.message } : {}),
    }))
    const crashing = states.filter((s) => s.phase === 'crash-looping')
    let versionChangeDone = false
    // Components being stopped (draining workers, removed api-servers) are on their way out.
    const notRunning = states.filter((s) => s.phase !== 'running' && s.phase !== 'stopping')
    // A bucket deleted under a running environment: its DAG files can no longer change, so it
    // reads UNAVAILABLE, and LastUpdate.Error names the bucket (the DAGs synced before stay).
    const source = this.syncs.get(record.id)?.sync.sourceProblem()
    const bucketMissing = source?.code === 'BUCKET_NOT_FOUND' ? source : undefined
    const healthy =
      notRunning.length === 0 &&
      airflowUnhealthy?.length === 0 &&
      [...healthByApiServer.values()].every(Boolean) &&
      bucketMissing === undefined
    const now = new Date()
    const obs: EnvironmentObservation = {
      ...record.observation,
      components,
      healthy,
      crashLooping: crashing.length > 0,
    }
    delete obs.failureCode
    delete obs.message
    if (crashing.length > 0) {
      obs.failureCode = 'COMPONENT_CRASH_LOOPING'
      const reasons: string[] = []
      for (const c of crashing) {
        const last = await lastLogLine(componentLogFile(layout, c.name))
        reasons.push(
          `${c.name} keeps crashing (restarted ${c.restarts} times, last exit ${c.lastExitCode ?? c.lastExitSignal ?? '?'})${last ? `: ${last}` : ''}`,
        )
      }
      obs.message = reasons.join('; ')
    } else if (bucketMissing) {
      obs.failureCode = bucketMissing.code
      obs.message = bucketMissing.message
    } else if (!healthy) {
      const parts = [
        ...notRunning.map((s) => `${s.name} is ${s.phase}`),
        ...(airflowUnhealthy
          ? airflowUnhealthy.map((u) => `Airflow reports ${u} unhealthy`)
          : ['no api-server answers /api/v2/monitor/health yet']),
      ]
      obs.message = `Waiting for: ${parts.join(', ')}`
      obs.failureCode = 'COMPONENT_UNHEALTHY'
    }

    if (record.observation.phase === 'creating') {
      // A crash loop counts during CREATING as after AVAILABLE: the create fails now, saying
      // which component and its last log line, instead of waiting out the create timeout. (A
      // port taken by another program was already moved before this pass started it.)
      if (crashing.length > 0) {
        return this.fail(
          record,
          'COMPONENT_CRASH_LOOPING',
          `The environment could not start: ${obs.message ?? 'a component keeps crashing'}`,
        )
      }
      if (healthy) {
        obs.phase = 'provisioned'
        obs.observedGeneration = record.generation
        obs.progressing = false
        obs.availableAt = now
        this.log.info(
          {
            environment: record.name,
            seconds: (now.getTime() - record.createdAt.getTime()) / 1000,
          },
          'environment available',
        )
      } else if (now.getTime() - record.createdAt.getTime() > this.options.createTimeoutMs) {
        return this.fail(
          record,
          obs.failureCode ?? 'CREATE_TIMEOUT',
          `The environment did not become healthy in time. ${obs.message ?? ''}`,
        )
      }
    } else if (
      record.observation.phase === 'provisioned' &&
      record.observation.maintenance &&
      record.observation.observedGeneration >= record.generation
    ) {
      const { maintenance } = record.observation
      if (healthy && rollingHeld.length === 0) {
        obs.runtimeKey = maintenance.toRuntimeKey
        delete obs.maintenance
        this.log.info(
          { environment: record.name, maintenance: maintenance.description },
          'maintenance done',
        )
      } else if (
        crashing.length > 0 ||
        now.getTime() - maintenance.startedAt.getTime() > this.options.createTimeoutMs
      ) {
        return this.abandonMaintenance(record, obs.message ?? 'it did not become healthy in time')
      }
    } else if (record.observation.phase === 'provisioned') {
      const updating = record.observation.observedGeneration < record.generation
      if (refused?.updateFailed) {
        // UPDATE_FAILED: the refused generation is never observed; its reason stays.
        obs.failedGeneration = record.generation
        obs.failureCode = refused.code
        obs.message = refused.message
      } else if (refused) {
        obs.healthy = false
        obs.failureCode = refused.code
        obs.message = refused.message
      } else if (record.observation.versionChange) {
        // The starting step of a version change: it ends AVAILABLE or rolls back, never in the
        // plain update timeout below.
        const change = record.observation.versionChange
        if (healthy && rollingHeld.length === 0) {
          obs.observedGeneration = record.generation
          obs.progressing = false
          obs.availableAt = now
          delete obs.versionChange
          versionChangeDone = true
          this.log.info(
            { environment: record.name, airflowVersion: change.toVersion },
            'Airflow version change done',
          )
        } else if (
          crashing.length > 0 ||
          now.getTime() - change.stepStartedAt.getTime() > this.options.createTimeoutMs
        ) {
          return this.rollBack(record, change, obs.message ?? 'it did not become healthy in time')
        }
      } else if (updating && record.observation.failedGeneration !== record.generation) {
        if (healthy && rollingHeld.length === 0) {
          obs.observedGeneration = record.generation
          obs.progressing = false
          obs.availableAt = now
          this.log.info(
            { environment: record.name, generation: record.generation },
            'environment updated',
          )
        } else if (
          now.getTime() - record.lastUpdateRequest.createdAt.getTime() >
          this.options.createTimeoutMs
        ) {
          obs.failedGeneration = record.generation
          obs.failureCode = obs.failureCode ?? 'UPDATE_TIMEOUT'
          obs.message = `The update did not become healthy in time. ${obs.message ?? ''}`
        }
      }
    }
    if (rollingHeld.length > 0 && healthy) {
      obs.message = `Rolling restart: ${rollingHeld.join(', ')} wait for their turn`
    }
    await this.options.store.writeObservation(record.name, obs)
    // Dropped only once the success is recorded: until then a rollback may still need it.
    if (versionChangeDone) {
      await dropMetadataSnapshot(this.options.postgres.adminUrl, metadataDatabaseFor(record.id))
    }
    // A refused update's spec never converges; the one that runs instead does (after a rollback
    // its components are starting).
    const converging = refused
      ? refused.updateFailed && (!healthy || rollingHeld.length > 0)
      : obs.phase === 'creating' ||
        obs.observedGeneration < record.generation ||
        !healthy ||
        rollingHeld.length > 0
    return { requeueAfterMs: converging ? CONVERGING_REQUEUE_MS : this.options.resyncIntervalMs }
  }

  /** Ends a failed create: everything it started is cleaned up; CREATE_FAILED with the reason. */
  private async fail(
    record: EnvironmentRecord,
    code: string,
    message: string,
  ): Promise<ProcessResult> {
    if (record.observation.phase !== 'creating') {
      await this.failUpdate(record, code, message)
      return {}
    }
    this.log.error({ environment: record.name, code, message }, 'environment create failed')
    await this.release(record)
    await this.options.store.writeObservation(record.name, {
      ...record.observation,
      phase: 'create-failed',
      healthy: false,
      progressing: false,
      failedGeneration: record.generation,
      failureCode: code,
      message,
      components: [],
    })
    return {}
  }

  /** Stops everything an environment has and removes its database and folder. Idempotent. */
  private async release(record: EnvironmentRecord): Promise<void> {
    this.options.artifacts.forget(record.id)
    const sync = this.syncs.get(record.id)
    if (sync) {
      await sync.sync.stop()
      this.syncs.delete(record.id)
    }
    // MWAA's delete does not wait for running tasks either.
    await this.options.driver.stopGroup(record.id, { maxStopGracePeriodMs: FORCED_STOP_GRACE_MS })
    failpoint('delete.after-stop')
    await dropMetadataDatabase(this.options.postgres.adminUrl, metadataDatabaseFor(record.id))
    failpoint('delete.after-drop-database')
    await rm(environmentLayout(this.options.environmentsDir, record.id).homeDir, {
      recursive: true,
      force: true,
    })
    failpoint('delete.after-remove-folder')
  }

  private async tearDown(record: EnvironmentRecord): Promise<ProcessResult> {
    if (record.observation.phase !== 'deleting') {
      await this.options.store.writeObservation(record.name, {
        ...record.observation,
        phase: 'deleting',
        progressing: true,
      })
    }
    await this.release(record)
    await this.options.store.markDeleted(
      record.name,
      {
        ...record.observation,
        phase: 'deleted',
        healthy: false,
        progressing: false,
        components: [],
      },
      new Date(),
    )
    this.log.info({ environment: record.name }, 'environment deleted')
    return { requeueAfterMs: this.options.deletedRetentionMs }
  }
}
