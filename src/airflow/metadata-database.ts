/**
 * Each environment's metadata database: its own database and login role on the shared
 * PostgreSQL server (like MWAA's single-tenant Aurora), created and dropped by the control plane
 * with the server's superuser connection.
 */
import pg from 'pg'

/** Names of an environment's database and role. */
export interface MetadataDatabase {
  name: string
  user: string
}

/** The database and role names for an environment id (lowercase hex). */
export function metadataDatabaseFor(environmentId: string): MetadataDatabase {
  if (!/^[a-z0-9]+$/.test(environmentId)) throw new Error(`bad environment id ${environmentId}`)
  return { name: `airflow_${environmentId}`, user: `airflow_${environmentId}` }
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
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const role = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [db.user])
    const verb = role.rowCount ? 'ALTER' : 'CREATE'
    await client.query(`${verb} ROLE "${db.user}" LOGIN PASSWORD ${quoteLiteral(password)}`)
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])
    if (!exists.rowCount) {
      await client.query(
        `CREATE DATABASE "${db.name}" OWNER "${db.user}" ENCODING 'UTF8' TEMPLATE template0`,
      )
    }
  } finally {
    await client.end()
  }
}

/** Drops the database (closing its connections) and the role. Idempotent. */
export async function dropMetadataDatabase(adminUrl: string, db: MetadataDatabase): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    await client.query(`DROP DATABASE IF EXISTS "${db.name}" WITH (FORCE)`)
    await client.query(`DROP ROLE IF EXISTS "${db.user}"`)
  } finally {
    await client.end()
  }
}

/** @returns true when the database exists */
export async function metadataDatabaseExists(
  adminUrl: string,
  db: MetadataDatabase,
): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    return (
      ((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name])).rowCount ??
        0) > 0
    )
  } finally {
    await client.end()
  }
}
