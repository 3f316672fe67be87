/**
 * The access-control store on the control-plane database (migration
 * `1763900000000_access.sql`): users and their inline policies, access keys (secrets sealed,
 * never in the clear), the audit trail, redeemed single-use tokens and sealed control-plane
 * secrets. The identity service is its only writer, except `audit_events`, which the API writes.
 */
import pg from 'pg'
import { idleErrorsIgnored } from './environment-store.js'

/** A stored user. `policies` maps policy name → IAM policy document (JSON as stored). */
export interface StoredUser {
  name: string
  arn: string
  createdAt: Date
  policies: Record<string, unknown>
}

/** A stored access key; `secretSealed` is the key ring's sealed form of the secret key. */
export interface StoredAccessKey {
  accessKeyId: string
  userName: string
  secretSealed: string
  createdAt: Date
}

/** One audit record (never holds a secret). */
export interface AuditEvent {
  at: Date
  /** The caller's ARN, or `anonymous` / the unknown access key id when not authenticated. */
  principal: string
  /** `airflow:CreateEnvironment`, `airdock:CreateUser`, … */
  action: string
  /** The resource ARN the action was authorized on (`*` when none). */
  resource: string
  /** The client's IP address as the control plane saw it. */
  sourceAddress: string
  /** `Success` or `Failure`. */
  result: 'Success' | 'Failure'
  /** The error name for a failure (e.g. `AccessDeniedException`). */
  errorCode?: string
  requestId: string
}

/** Thrown when a user or key that must be unique already exists. */
export class AlreadyExistsError extends Error {}

/** PostgreSQL-backed access store. Migrations are applied by `EnvironmentStore.open`. */
export class AccessStore {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects to the control-plane database (`postgres://…`). */
  static open(databaseUrl: string): AccessStore {
    return new AccessStore(
      idleErrorsIgnored(new pg.Pool({ connectionString: databaseUrl, max: 3 })),
    )
  }

  /** Closes the connection pool. */
  async close(): Promise<void> {
    await this.pool.end()
  }

  /** @returns the number of users */
  async countUsers(): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT COUNT(*) AS n FROM iam_users')
    return Number(r.rows[0]!.n)
  }

  /** @throws AlreadyExistsError when a user of that name exists */
  async insertUser(name: string, arn: string, policies: Record<string, unknown>): Promise<void> {
    try {
      await this.pool.query('INSERT INTO iam_users (name, arn, policies) VALUES ($1, $2, $3)', [
        name,
        arn,
        JSON.stringify(policies),
      ])
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new AlreadyExistsError(`User ${name} already exists.`)
      }
      throw err
    }
  }

  /** @returns the user, or undefined */
  async getUser(name: string): Promise<StoredUser | undefined> {
    const r = await this.pool.query<UserRow>('SELECT * FROM iam_users WHERE name = $1', [name])
    return r.rows[0] ? userFromRow(r.rows[0]) : undefined
  }

  /** @returns every user, by name */
  async listUsers(): Promise<StoredUser[]> {
    const r = await this.pool.query<UserRow>('SELECT * FROM iam_users ORDER BY name')
    return r.rows.map(userFromRow)
  }

  /** Deletes a user and (cascade) its keys. @returns whether it existed */
  async deleteUser(name: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM iam_users WHERE name = $1', [name])
    return r.rowCount === 1
  }

  /** Sets (or removes, with `document` undefined) one inline policy. @returns whether the user exists */
  async setUserPolicy(name: string, policyName: string, document: unknown): Promise<boolean> {
    const r =
      document === undefined
        ? await this.pool.query('UPDATE iam_users SET policies = policies - $2 WHERE name = $1', [
            name,
            policyName,
          ])
        : await this.pool.query(
            'UPDATE iam_users SET policies = policies || jsonb_build_object($2::text, $3::jsonb) WHERE name = $1',
            [name, policyName, JSON.stringify(document)],
          )
    return r.rowCount === 1
  }

  /** Stores a new access key. */
  async insertAccessKey(key: Omit<StoredAccessKey, 'createdAt'>): Promise<StoredAccessKey> {
    const r = await this.pool.query<KeyRow>(
      'INSERT INTO iam_access_keys (access_key_id, user_name, secret_sealed) VALUES ($1, $2, $3) RETURNING *',
      [key.accessKeyId, key.userName, key.secretSealed],
    )
    return keyFromRow(r.rows[0]!)
  }

  /** @returns the access key, or undefined */
  async getAccessKey(accessKeyId: string): Promise<StoredAccessKey | undefined> {
    const r = await this.pool.query<KeyRow>(
      'SELECT * FROM iam_access_keys WHERE access_key_id = $1',
      [accessKeyId],
    )
    return r.rows[0] ? keyFromRow(r.rows[0]) : undefined
  }

  /** @returns a user's access keys, oldest first */
  async listAccessKeys(userName: string): Promise<StoredAccessKey[]> {
    const r = await this.pool.query<KeyRow>(
      'SELECT * FROM iam_access_keys WHERE user_name = $1 ORDER BY created_at',
      [userName],
    )
    return r.rows.map(keyFromRow)
  }

  /** @returns whether the key existed */
  async deleteAccessKey(accessKeyId: string): Promise<boolean> {
    const r = await this.pool.query('DELETE FROM iam_access_keys WHERE access_key_id = $1', [
      accessKeyId,
    ])
    return r.rowCount === 1
  }

  /** Appends an audit record. */
  async appendAudit(event: AuditEvent): Promise<void> {
    await this.pool.query(
      `INSERT INTO audit_events (at, principal, action, resource, source_address, result, error_code, request_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        event.at,
        event.principal,
        event.action,
        event.resource,
        event.sourceAddress,
        event.result,
        event.errorCode ?? null,
        event.requestId,
      ],
    )
  }

  /**
   * The newest audit records, newest last.
   * @param limit - at most this many (1..1000)
   * @param since - only records at or after this instant
   */
  async listAudit(limit: number, since?: Date): Promise<AuditEvent[]> {
    const r = await this.pool.query<AuditRow>(
      `SELECT * FROM (SELECT * FROM audit_events WHERE at >= $2 ORDER BY seq DESC LIMIT $1) t
       ORDER BY seq`,
      [limit, since ?? new Date(0)],
    )
    return r.rows.map((row) => ({
      at: row.at,
      principal: row.principal,
      action: row.action,
      resource: row.resource,
      sourceAddress: row.source_address,
      result: row.result as AuditEvent['result'],
      ...(row.error_code ? { errorCode: row.error_code } : {}),
      requestId: row.request_id,
    }))
  }

  /**
   * Marks a single-use token redeemed.
   * @returns true the first time for this `jti`, false when it was already redeemed
   */
  async redeemToken(jti: string, expiresAt: Date): Promise<boolean> {
    await this.pool.query('DELETE FROM redeemed_tokens WHERE expires_at < now()')
    const r = await this.pool.query(
      'INSERT INTO redeemed_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [jti, expiresAt],
    )
    return r.rowCount === 1
  }

  /**
   * A sealed control-plane secret, created once: the first caller's `sealed` wins.
   * @returns the stored sealed value
   */
  async secretOnce(name: string, sealed: string): Promise<string> {
    await this.pool.query(
      'INSERT INTO control_plane_secrets (name, sealed) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [name, sealed],
    )
    const r = await this.pool.query<{ sealed: string }>(
      'SELECT sealed FROM control_plane_secrets WHERE name = $1',
      [name],
    )
    return r.rows[0]!.sealed
  }
}

interface UserRow {
  name: string
  arn: string
  created_at: Date
  policies: Record<string, unknown>
}

interface KeyRow {
  access_key_id: string
  user_name: string
  secret_sealed: string
  created_at: Date
}

interface AuditRow {
  at: Date
  principal: string
  action: string
  resource: string
  source_address: string
  result: string
  error_code: string | null
  request_id: string
}

function userFromRow(row: UserRow): StoredUser {
  return { name: row.name, arn: row.arn, createdAt: row.created_at, policies: row.policies }
}

function keyFromRow(row: KeyRow): StoredAccessKey {
  return {
    accessKeyId: row.access_key_id,
    userName: row.user_name,
    secretSealed: row.secret_sealed,
    createdAt: row.created_at,
  }
}
