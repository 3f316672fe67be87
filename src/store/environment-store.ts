/**
 * The environment store on PostgreSQL (the embedded server by default, or
 * `AIRDOCK_DATABASE_URL`). Schema: `migrations/*.sql`, applied by node-pg-migrate.
 *
 * Writers: the environment service writes spec, generation, tags, the last update request and
 * deletion requests; the reconciler writes `observation`, `secrets` and `deleted_at`; the
 * autoscaler writes `scaling`. Each method touches only its own columns, so they never
 * overwrite each other.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runner } from 'node-pg-migrate'
import pg from 'pg'
import type {
  EnvironmentObservation,
  EnvironmentRecord,
  EnvironmentScaling,
  EnvironmentSpec,
  EnvironmentStatus,
  LastUpdateRequest,
} from '../domain/environment.js'
import { deriveEnvironmentStatus } from '../domain/status.js'

const MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../migrations',
)

/**
 * A pool whose idle connections may be cut by the server (PostgreSQL restarting or shutting
 * down): pg then drops the connection and emits `error` on the pool, which would otherwise be an
 * uncaught exception. The next query opens a new connection; a query in flight still fails.
 */
export function idleErrorsIgnored(pool: pg.Pool): pg.Pool {
  pool.on('error', () => undefined)
  return pool
}

/** Thrown by `insert` when a live environment already has that name. */
export class DuplicateEnvironmentError extends Error {}

/** Thrown by `updateSpec` when the generation moved since the caller read it. */
export class ConcurrentUpdateError extends Error {}

interface Row {
  name: string
  id: string
  arn: string
  seq: string
  created_at: Date
  spec: StoredSpec
  generation: number
  tags: Record<string, string>
  last_update_request: { createdAt: string; source: string; workerReplacementStrategy?: string }
  port_block: number
  observation: EnvironmentObservation & { availableAt?: string }
  deletion_requested_at: Date | null
  deleted_at: Date | null
  scaling: StoredScaling | null
  last_good_spec: StoredSpec | null
}

/** {@link EnvironmentScaling} as JSON (instants as ISO 8601 strings). */
type StoredScaling = Omit<
  EnvironmentScaling,
  'idleSince' | 'lowWebserverLoadSince' | 'sampledAt'
> & {
  idleSince?: string
  lowWebserverLoadSince?: string
  sampledAt: string
}

function scalingFromRow(stored: StoredScaling): EnvironmentScaling {
  const { idleSince, lowWebserverLoadSince, sampledAt, ...rest } = stored
  return {
    ...rest,
    ...(idleSince ? { idleSince: new Date(idleSince) } : {}),
    ...(lowWebserverLoadSince ? { lowWebserverLoadSince: new Date(lowWebserverLoadSince) } : {}),
    sampledAt: new Date(sampledAt),
  }
}

/** Seals and opens values with the master key (`SecretBox`). */
export interface SyncSealer {
  sealJson(value: unknown): string
  openJson<T>(sealed: string): T
}

/**
 * The spec as stored: AirflowConfigurationOptions values may hold secrets (passwords, tokens),
 * so the whole map is kept sealed in `sealedAirflowConfigurationOptions`.
 */
type StoredSpec = EnvironmentSpec & { sealedAirflowConfigurationOptions?: string }

function specToRow(spec: EnvironmentSpec, sealer: SyncSealer): string {
  const options = spec.airflowConfigurationOptions
  if (Object.keys(options).length === 0) return JSON.stringify(spec)
  const stored: StoredSpec = {
    ...spec,
    airflowConfigurationOptions: {},
    sealedAirflowConfigurationOptions: sealer.sealJson(options),
  }
  return JSON.stringify(stored)
}

function specFromRow(stored: StoredSpec, sealer: SyncSealer): EnvironmentSpec {
  const { sealedAirflowConfigurationOptions: sealed, ...spec } = stored
  if (sealed) spec.airflowConfigurationOptions = sealer.openJson<Record<string, string>>(sealed)
  return spec
}

function fromRow(row: Row, sealer: SyncSealer): EnvironmentRecord {
  const lur = row.last_update_request
  const record: EnvironmentRecord = {
    name: row.name,
    id: row.id,
    arn: row.arn,
    createdAt: row.created_at,
    spec: specFromRow(row.spec, sealer),
    generation: row.generation,
    tags: row.tags,
    lastUpdateRequest: {
      createdAt: new Date(lur.createdAt),
      source: lur.source,
      ...(lur.workerReplacementStrategy
        ? { workerReplacementStrategy: lur.workerReplacementStrategy as 'FORCED' | 'GRACEFUL' }
        : {}),
    },
    portBlock: row.port_block,
    observation: observationFromRow(row.observation),
  }
  if (row.scaling) record.scaling = scalingFromRow(row.scaling)
  if (row.last_good_spec) record.lastGoodSpec = specFromRow(row.last_good_spec, sealer)
  if (row.deletion_requested_at) record.deletionRequestedAt = row.deletion_requested_at
  if (row.deleted_at) record.deletedAt = row.deleted_at
  return record
}

/** The stored observation (JSON) with its instants as Dates again. */
function observationFromRow(stored: Row['observation']): EnvironmentObservation {
  const date = (value: Date | string) => new Date(value)
  const { availableAt, versionChange, maintenance, ...rest } = stored
  return {
    ...rest,
    ...(availableAt ? { availableAt: date(availableAt) } : {}),
    ...(versionChange
      ? { versionChange: { ...versionChange, stepStartedAt: date(versionChange.stepStartedAt) } }
      : {}),
    ...(maintenance
      ? { maintenance: { ...maintenance, startedAt: date(maintenance.startedAt) } }
      : {}),
  }
}

/** PostgreSQL-backed environment store. */
export class EnvironmentStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly sealer: SyncSealer,
  ) {}

  /**
   * Connects and applies pending migrations.
   * @param databaseUrl - `postgres://user:pass@host:port/db` of the control-plane database
   * @param sealer - seals AirflowConfigurationOptions values at rest (the master key)
   */
  static async open(databaseUrl: string, sealer: SyncSealer): Promise<EnvironmentStore> {
    await runner({
      databaseUrl,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'airdock_migrations',
      log: () => undefined,
    })
    return new EnvironmentStore(
      idleErrorsIgnored(new pg.Pool({ connectionString: databaseUrl, max: 5 })),
      sealer,
    )
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.pool.end()
  }

  /**
   * Inserts a new environment. A DELETED (not yet purged) environment of the same name is
   * replaced; any other existing row makes this throw.
   * @throws DuplicateEnvironmentError
   */
  async insert(record: Omit<EnvironmentRecord, 'portBlock'>): Promise<EnvironmentRecord> {
    const client = await this.pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('LOCK TABLE environments IN SHARE ROW EXCLUSIVE MODE')
      const existing = await client.query<{ deleted_at: Date | null }>(
        'SELECT deleted_at FROM environments WHERE name = $1',
        [record.name],
      )
      if (existing.rows[0]) {
        if (!existing.rows[0].deleted_at) {
          throw new DuplicateEnvironmentError(`environment ${record.name} already exists`)
        }
        await client.query('DELETE FROM environments WHERE name = $1', [record.name])
      }
      const block = await client.query<{ block: number }>(
        `SELECT COALESCE(MIN(b), 0) AS block FROM generate_series(0, (SELECT COUNT(*) FROM environments)::int) b
         WHERE b NOT IN (SELECT port_block FROM environments)`,
      )
      const portBlock = block.rows[0]!.block
      const result = await client.query<Row>(
        `INSERT INTO environments (name, id, arn, created_at, spec, generation, tags,
           last_update_request, port_block, observation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
        [
          record.name,
          record.id,
          record.arn,
          record.createdAt,
          specToRow(record.spec, this.sealer),
          record.generation,
          JSON.stringify(record.tags),
          JSON.stringify(record.lastUpdateRequest),
          portBlock,
          JSON.stringify(record.observation),
        ],
      )
      await client.query('COMMIT')
      return fromRow(result.rows[0]!, this.sealer)
    } catch (err) {
      await client.query('ROLLBACK')
      throw err
    } finally {
      client.release()
    }
  }

  /** @returns the environment, or undefined when there is none (or it was purged) */
  async get(name: string): Promise<EnvironmentRecord | undefined> {
    const result = await this.pool.query<Row>('SELECT * FROM environments WHERE name = $1', [name])
    return result.rows[0] ? fromRow(result.rows[0], this.sealer) : undefined
  }

  /** @returns the name of the environment with this id, or undefined */
  async nameForId(id: string): Promise<string | undefined> {
    const result = await this.pool.query<{ name: string }>(
      'SELECT name FROM environments WHERE id = $1',
      [id],
    )
    return result.rows[0]?.name
  }

  /**
   * The number of environments in each MWAA status, derived as GetEnvironment derives it
   * (`deriveEnvironmentStatus`), for `/healthz`. Reads only generations and observations (no
   * sealed value is opened).
   * @param deletedRetentionMs - DELETED environments older than this are left out, as
   *   ListEnvironments leaves them out
   * @returns counts by status; statuses without environments are absent
   */
  async countByStatus(
    deletedRetentionMs: number,
  ): Promise<Partial<Record<EnvironmentStatus, number>>> {
    const result = await this.pool.query<Pick<Row, 'generation' | 'observation'>>(
      `SELECT generation, observation FROM environments
       WHERE deleted_at IS NULL OR deleted_at > now() - make_interval(secs => $1)`,
      [deletedRetentionMs / 1000],
    )
    const counts: Partial<Record<EnvironmentStatus, number>> = {}
    for (const row of result.rows) {
      const observation = observationFromRow(row.observation)
      const status = deriveEnvironmentStatus({
        phase: observation.phase,
        generation: row.generation,
        observation,
      })
      counts[status] = (counts[status] ?? 0) + 1
    }
    return counts
  }

  /** @returns every stored environment, oldest first */
  async all(): Promise<EnvironmentRecord[]> {
    const result = await this.pool.query<Row>('SELECT * FROM environments ORDER BY seq')
    return result.rows.map((row) => fromRow(row, this.sealer))
  }

  /**
   * One page of environment names in creation order.
   * @param afterSeq - resume after this position (from a previous page), or undefined
   * @param limit - page size
   * @param deletedRetentionMs - DELETED environments older than this are left out (they read
   *   as missing even before the reconciler purges them)
   * @returns names and, when more remain, the position to resume after
   */
  async listNames(
    afterSeq: string | undefined,
    limit: number,
    deletedRetentionMs: number,
  ): Promise<{ names: string[]; lastSeq?: string }> {
    const result = await this.pool.query<{ name: string; seq: string }>(
      `SELECT name, seq FROM environments
       WHERE seq > $1 AND (deleted_at IS NULL OR deleted_at > now() - make_interval(secs => $3))
       ORDER BY seq LIMIT $2`,
      [afterSeq ?? '0', limit + 1, deletedRetentionMs / 1000],
    )
    const rows = result.rows.slice(0, limit)
    return {
      names: rows.map((r) => r.name),
      lastSeq: result.rows.length > limit ? rows[rows.length - 1]!.seq : undefined,
    }
  }

  /**
   * Records a new spec (compare-and-set on the generation the caller read).
   * @param lastGoodSpec - the spec that runs should this update's inputs be refused
   * @throws ConcurrentUpdateError when another update won the race
   */
  async updateSpec(
    name: string,
    expectedGeneration: number,
    spec: EnvironmentSpec,
    request: LastUpdateRequest,
    lastGoodSpec: EnvironmentSpec,
  ): Promise<void> {
    const result = await this.pool.query(
      `UPDATE environments SET spec = $3, generation = generation + 1, last_update_request = $4,
         last_good_spec = $5
       WHERE name = $1 AND generation = $2 AND deletion_requested_at IS NULL`,
      [
        name,
        expectedGeneration,
        specToRow(spec, this.sealer),
        JSON.stringify(request),
        specToRow(lastGoodSpec, this.sealer),
      ],
    )
    if (result.rowCount !== 1) throw new ConcurrentUpdateError(`environment ${name} changed`)
  }

  /** Replaces the environment's tags. */
  async setTags(name: string, tags: Record<string, string>): Promise<void> {
    await this.pool.query('UPDATE environments SET tags = $2 WHERE name = $1', [
      name,
      JSON.stringify(tags),
    ])
  }

  /** Marks the environment for deletion (idempotent). */
  async requestDeletion(name: string, at: Date): Promise<void> {
    await this.pool.query(
      'UPDATE environments SET deletion_requested_at = COALESCE(deletion_requested_at, $2) WHERE name = $1',
      [name, at],
    )
  }

  /** Writes the reconciler's observation (reconciler only). */
  async writeObservation(name: string, observation: EnvironmentObservation): Promise<void> {
    await this.pool.query('UPDATE environments SET observation = $2 WHERE name = $1', [
      name,
      JSON.stringify(observation),
    ])
  }

  /**
   * Writes the autoscaler's decisions (autoscaler only). By id, so a sample taken before an
   * environment was deleted never lands on a new environment of the same name.
   */
  async writeScaling(id: string, scaling: EnvironmentScaling): Promise<void> {
    await this.pool.query(
      'UPDATE environments SET scaling = $2 WHERE id = $1 AND deleted_at IS NULL',
      [id, JSON.stringify(scaling)],
    )
  }

  /** Marks the environment torn down (reconciler only). */
  async markDeleted(name: string, observation: EnvironmentObservation, at: Date): Promise<void> {
    await this.pool.query(
      'UPDATE environments SET observation = $2, deleted_at = $3, secrets = NULL WHERE name = $1',
      [name, JSON.stringify(observation), at],
    )
  }

  /** Removes a DELETED environment for good. */
  async purge(name: string): Promise<void> {
    await this.pool.query('DELETE FROM environments WHERE name = $1 AND deleted_at IS NOT NULL', [
      name,
    ])
  }

  /** @returns the sealed secrets of an environment, if generated */
  async getSealedSecrets(name: string): Promise<string | undefined> {
    const result = await this.pool.query<{ secrets: string | null }>(
      'SELECT secrets FROM environments WHERE name = $1',
      [name],
    )
    return result.rows[0]?.secrets ?? undefined
  }

  /** Stores sealed secrets once; a second call keeps the first value. @returns the stored value */
  async putSealedSecretsOnce(name: string, sealed: string): Promise<string> {
    const result = await this.pool.query<{ secrets: string }>(
      `UPDATE environments SET secrets = COALESCE(secrets, $2) WHERE name = $1 RETURNING secrets`,
      [name, sealed],
    )
    return result.rows[0]!.secrets
  }
}
