/**
 * Airflow API tokens minted by the control plane. Airflow 3's SimpleAuthManager accepts any
 * HS512 JWT signed with the environment's `[api_auth] jwt_secret` whose claims carry `sub`
 * and `role` (reference `airflow3-runtime.md` §4.2–4.3; Airflow `api_fastapi/auth/tokens.py`).
 */
import { randomUUID } from 'node:crypto'
import { SignJWT } from 'jose'

/** Airflow roles as SimpleAuthManager names them (MWAA's Admin/Op/User/Viewer). */
export type AirflowRole = 'ADMIN' | 'OP' | 'USER' | 'VIEWER'

/**
 * Mints an Airflow API token.
 * @param jwtSecret - the environment's `[api_auth] jwt_secret`
 * @param subject - the Airflow user name
 * @param role - the role the token grants
 * @param ttlSeconds - lifetime in seconds
 * @returns a compact JWS for `Authorization: Bearer` or the `_token` cookie
 */
export async function mintAirflowToken(
  jwtSecret: string,
  subject: string,
  role: AirflowRole,
  ttlSeconds: number,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ role, teams: [] })
    .setProtectedHeader({ alg: 'HS512', typ: 'JWT' })
    .setSubject(subject)
    .setAudience('apache-airflow')
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID().replace(/-/g, ''))
    .sign(new TextEncoder().encode(jwtSecret))
}
