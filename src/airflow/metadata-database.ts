/**
 * Each environment's metadata database: its own database and login role on the shared
 * PostgreSQL server (like MWAA's single-tenant Aurora), created and dropped by the control plane
 * with the server's superuser connection. Before an Airflow version change the database is
 * copied to a snapshot (`<name>_snapshot`, made with `CREATE DATABASE … TEMPLATE`), which a
 * rollback copies back (MWAA takes an Aurora snapshot for the same purpose, reference §10).
 */
import pg from 'pg'

/** Names of an environment's database, its snapshot and its role. */
export interface MetadataDatabase {
  name: string
  user: string
  /** The copy taken before a version change. */
  snapshot: string
}

/** The database and role names for an environment id (lowercase hex). */
export function metadataDatabaseFor(environmentId: string): MetadataDatabase {
  if (!/^[a-z0-9]+$/.test(environmentId)) throw new Error(`bad environment id ${environmentId}`)
  const name = `airflow_${environmentId}`
  return { name, user: name, snapshot: `${name}_snapshot` }
}

/** Runs `work` with a superuser connection to the server. */
async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/**
 * Copies the database to its snapshot, replacing an older snapshot. New connections are refused
 * and open ones closed while the copy is made (PostgreSQL copies a template only when nobody is
 * connected to it); the caller has stopped Airflow's components, so only stragglers (the
 * autoscaler's sampling) are cut. Idempotent.
 */
export async function snapshotMetadataDatabase(
  adminUrl: string,
  db: MetadataDatabase,
): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS "${db.snapshot}" WITH (FORCE)`)
    await client.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS false`)
    try {
      await client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [db.name],
      )
      await client.query(
        `CREATE DATABASE "${db.snapshot}" OWNER "${db.user}" TEMPLATE "${db.name}"`,
      )
    } finally {
      await client.query(`ALTER DATABASE "${db.name}" WITH ALLOW_CONNECTIONS true`)
    }
  })
}

/**
 * Replaces the database with a copy of its snapshot (closing every connection), keeping the
 * snapshot. Idempotent.
 * @throws Error when there is no snapshot (the database is left untouched)
 */
export async function restoreMetadataDatabase(
  adminUrl: string,
  db: MetadataDatabase,
): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.snapshot])
    if (!exists.rowCount) throw new Error(`no snapshot ${db.snapshot} to restore ${db.name} from`)
    await client.query(`DROP DATABASE IF EXISTS "${db.name}" WITH (FORCE)`)
    await client.query(`CREATE DATABASE "${db.name}" OWNER "${db.user}" TEMPLATE "${db.snapshot}"`)
  })
}

/** @returns true when the database's snapshot exists */
export async function metadataSnapshotExists(
  adminUrl: string,
  db: MetadataDatabase,
): Promise<boolean> {
  return metadataDatabaseExists(adminUrl, { ...db, name: db.snapshot })
}

/** Drops the snapshot, if any. */
export async function dropMetadataSnapshot(adminUrl: string, db: MetadataDatabase): Promise<void> {
  await withAdmin(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS "${db.snapshot}" WITH (FORCE)`),
  )
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`
}

/**
 * Creates the role (with `password`) and the database it owns, if missing; resets the password
 * if the role exists. Idempotent.
 * @param adminUrl - superuser connection URL of the server
 */
export async function ensureMetadataDatabase(
  adminUrl: string,
  db: MetadataDatabase,
  password: string,
): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.user])
    const verb = role.rowCount ? 'ALTER' : 'CREATE'
    await client.query(`${verb} ROLE "${db.user}" LOGIN PASSWORD ${quoteLiteral(password)}`)
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])
    if (!exists.rowCount) {
      await client.query(
        `CREATE DATABASE "${db.name}" OWNER "${db.user}" ENCODING 'UTF8' TEMPLATE template0`,
      )
    }
  })
}

/** Drops the database and its snapshot (closing their connections) and the role. Idempotent. */
export async function dropMetadataDatabase(adminUrl: string, db: MetadataDatabase): Promise<void> {
  await withAdmin(adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS "${db.name}" WITH (FORCE)`)
    await client.query(`DROP DATABASE IF EXISTS "${db.snapshot}" WITH (FORCE)`)
    await client.query(`DROP ROLE IF EXISTS "${db.user}"`)
  })
}

/** @returns true when the database exists */
export async function metadataDatabaseExists(
  adminUrl: string,
  db: MetadataDatabase,
): Promise<boolean> {
  return withAdmin(
    adminUrl,
    async (client) =>
      ((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).rowCount ??
        0) > 0,
  )
}
