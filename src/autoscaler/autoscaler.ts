/**
 * The autoscaler (DESIGN.md: "the autoscaler … is ours"): the only writer of each environment's
 * desired worker and web server counts (`EnvironmentRecord.scaling`). Every `intervalMs` it
 * samples each AVAILABLE Celery environment — task backlog from its metadata database, web
 * server CPU and gateway connections from `/proc` — runs the pure policies of
 * `scaling-policy.ts`, stores the decision and, when a count changed, asks the reconciler to
 * apply it at once (`onChange`). How workers are added and drained is the reconciler's and the
 * driver's job; this part only decides how many.
 *
 * mw1.micro has no autoscaling (MWAA: "mw1.micro … no autoscaling"): its single scheduler runs
 * tasks itself.
 */
import pg from 'pg'
import { tasksPerWorker, workerQueue, environmentPorts } from '../airflow/components.js'
import { metadataDatabaseFor } from '../airflow/metadata-database.js'
import { findEnvironmentClass } from '../domain/environment-classes.js'
import type { EnvironmentRecord, EnvironmentScaling } from '../domain/environment.js'
import { coerceError } from '../domain/errors.js'
import { desiredWebserverCount, desiredWorkerCount } from '../domain/scaling.js'
import type { Logger } from '../observability/logger.js'
import type { Driver } from '../runtime/driver.js'
import type { EnvironmentStore } from '../store/environment-store.js'
import { CpuSampler, countEstablishedConnections, queryTaskBacklog } from './load-metrics.js'
import { decideWebservers, decideWorkers } from './scaling-policy.js'

/**
 * An api-server's CPU counts only once it has run this long, in ms: an Airflow api-server spends
 * its first seconds importing and starting (a rolling restart would otherwise read as load and
 * scale the web servers out).
 */
export const WEBSERVER_WARMUP_MS = 45_000

/** Dependencies and settings of the {@link Autoscaler}. */
export interface AutoscalerOptions {
  store: EnvironmentStore
  /** Read only: which api-servers run, and their pids (for CPU). */
  driver: Driver
  /** Superuser URL of the PostgreSQL server holding the environments' metadata databases. */
  postgresAdminUrl: string
  logger: Logger
  /** Sampling period, in ms. */
  intervalMs: number
  /** Backlog-free time before workers scale in to MinWorkers, in ms (MWAA: 120 000). */
  workerScaleInIdleMs: number
  /** Low-load time before one web server is removed, in ms. */
  webserverScaleInCooldownMs: number
  /** First port of the component range (to find each environment's gateway port). */
  componentPortBase: number
  /** Called with an environment's name when its desired counts changed. */
  onChange: (name: string) => void
}

/** Samples load and decides desired counts. Start with `start()`, stop with `close()`. */
export class Autoscaler {
  private readonly log: Logger
  private readonly pools = new Map<string, pg.Pool>()
  private readonly cpu = new CpuSampler()
  /** Api-server pids sampled during the current tick. */
  private readonly sampledPids = new Set<number>()
  private timer?: NodeJS.Timeout
  private running?: Promise<void>
  private closed = false

  constructor(private readonly options: AutoscalerOptions) {
    this.log = options.logger.child({ part: 'autoscaler' })
  }

  /** Starts sampling every `intervalMs`. */
  start(): void {
    const loop = (): void => {
      if (this.closed) return
      this.running = this.tick().finally(() => {
        if (!this.closed) this.timer = setTimeout(loop, this.options.intervalMs)
      })
    }
    this.timer = setTimeout(loop, this.options.intervalMs)
  }

  /** Stops sampling and closes the database connections. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.running
    await Promise.all([...this.pools.values()].map((pool) => pool.end()))
    this.pools.clear()
  }

  /** One pass over every environment (errors are logged per environment, never thrown). */
  async tick(): Promise<void> {
    let records: EnvironmentRecord[]
    try {
      records = await this.options.store.all()
    } catch (err) {
      this.log.warn({ err: coerceError(err) }, 'could not list environments')
      return
    }
    const live = new Set<string>()
    this.sampledPids.clear()
    for (const record of records) {
      if (!this.scales(record)) continue
      live.add(record.id)
      try {
        await this.scaleOne(record)
      } catch (err) {
        this.log.warn({ environment: record.name, err: coerceError(err) }, 'scaling sample failed')
      }
    }
    this.cpu.retain(this.sampledPids)
    for (const [id, pool] of this.pools) {
      if (!live.has(id)) {
        this.pools.delete(id)
        await pool.end().catch(() => undefined)
      }
    }
  }

  /** Celery environments that have been AVAILABLE and are not being deleted. */
  private scales(record: EnvironmentRecord): boolean {
    return (
      record.observation.phase === 'provisioned' &&
      record.deletionRequestedAt === undefined &&
      findEnvironmentClass(record.spec.environmentClass)?.hybrid === false
    )
  }

  private poolFor(record: EnvironmentRecord): pg.Pool {
    let pool = this.pools.get(record.id)
    if (pool === undefined) {
      const url = new URL(this.options.postgresAdminUrl)
      url.pathname = `/${metadataDatabaseFor(record.id).name}`
      pool = new pg.Pool({ connectionString: url.toString(), max: 1, idleTimeoutMillis: 30_000 })
      pool.on('error', (err) => this.log.debug({ err }, 'idle metadata connection failed'))
      this.pools.set(record.id, pool)
    }
    return pool
  }

  private async scaleOne(record: EnvironmentRecord): Promise<void> {
    const { spec } = record
    const nowMs = Date.now()
    const previous = record.scaling
    const currentWorkers = desiredWorkerCount(spec, previous)
    const currentWebservers = desiredWebserverCount(spec, previous)

    let backlog: number | undefined
    try {
      backlog = await queryTaskBacklog(this.poolFor(record), workerQueue(spec))
    } catch (err) {
      // Never read a failed sample as "no tasks": keep the workers as they are.
      this.log.debug({ environment: record.name, err: coerceError(err) }, 'backlog unreadable')
    }
    const workers =
      backlog === undefined
        ? { desiredWorkers: currentWorkers, idleSinceMs: previous?.idleSince?.getTime() }
        : decideWorkers({
            backlog,
            minWorkers: spec.minWorkers,
            maxWorkers: spec.maxWorkers,
            tasksPerWorker: tasksPerWorker(spec),
            currentDesired: currentWorkers,
            idleSinceMs: previous?.idleSince?.getTime(),
            nowMs,
            scaleInIdleMs: this.options.workerScaleInIdleMs,
          })

    const load = await this.webserverLoad(record)
    const webservers =
      load === undefined
        ? {
            desiredWebservers: currentWebservers,
            lowLoadSinceMs: previous?.lowWebserverLoadSince?.getTime(),
          }
        : decideWebservers({
            minWebservers: spec.minWebservers,
            maxWebservers: spec.maxWebservers,
            currentDesired: currentWebservers,
            running: load.running,
            cpuPercent: load.cpuPercent,
            activeConnections: load.activeConnections,
            lowLoadSinceMs: previous?.lowWebserverLoadSince?.getTime(),
            nowMs,
            scaleInCooldownMs: this.options.webserverScaleInCooldownMs,
          })

    const next: EnvironmentScaling = {
      desiredWorkers: workers.desiredWorkers,
      desiredWebservers: webservers.desiredWebservers,
      backlog: backlog ?? previous?.backlog ?? 0,
      ...(workers.idleSinceMs !== undefined ? { idleSince: new Date(workers.idleSinceMs) } : {}),
      ...(webservers.lowLoadSinceMs !== undefined
        ? { lowWebserverLoadSince: new Date(webservers.lowLoadSinceMs) }
        : {}),
      ...(load
        ? {
            webserverLoad: {
              cpuPercent: load.cpuPercent,
              activeConnections: load.activeConnections,
            },
          }
        : {}),
      sampledAt: new Date(nowMs),
    }
    await this.options.store.writeScaling(record.id, next)
    const changed =
      next.desiredWorkers !== currentWorkers || next.desiredWebservers !== currentWebservers
    if (changed) {
      this.log.info(
        {
          environment: record.name,
          backlog: next.backlog,
          workers: [currentWorkers, next.desiredWorkers],
          webservers: [currentWebservers, next.desiredWebservers],
          webserverLoad: next.webserverLoad,
        },
        'desired counts changed',
      )
      this.options.onChange(record.name)
    }
  }

  /**
   * Mean CPU of the running api-servers past their warm-up (0 when none is) and open
   * connections at the gateway; undefined when no api-server runs.
   */
  private async webserverLoad(
    record: EnvironmentRecord,
  ): Promise<{ running: number; cpuPercent: number; activeConnections: number } | undefined> {
    const apiServers = this.options.driver
      .observe(record.id)
      .filter((s) => s.component === 'api-server' && s.phase === 'running' && s.pid !== undefined)
    const samples: number[] = []
    const warmBefore = Date.now() - WEBSERVER_WARMUP_MS
    for (const state of apiServers) {
      this.sampledPids.add(state.pid!)
      const percent = await this.cpu.sample(state.pid!)
      const warm = (state.startedAt?.getTime() ?? 0) <= warmBefore
      if (percent !== undefined && warm) samples.push(percent)
    }
    if (apiServers.length === 0) return undefined
    const gatewayPort = environmentPorts(record, this.options.componentPortBase).gateway
    return {
      running: apiServers.length,
      cpuPercent: samples.length === 0 ? 0 : samples.reduce((a, b) => a + b, 0) / samples.length,
      activeConnections: await countEstablishedConnections(gatewayPort),
    }
  }
}
