/**
 * Short-lived tokens the control plane issues for an environment's web server (reference §1.4,
 * §5): the web login token of CreateWebLoginToken (60 s, single use) and the CLI token of
 * CreateCliToken (60 s). Both are HS256 JWTs signed with a control-plane key that is generated
 * once and stored sealed; the environment's gateway hands them back to the control plane, which
 * verifies them here.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { errors, jwtVerify, SignJWT } from 'jose'
import { AccessDeniedError } from '../domain/errors.js'
import type { AccessStore } from '../store/access-store.js'
import type { Sealer } from './identity-service.js'

/** Token lifetime, in seconds (MWAA: 60 s for both kinds). */
const LOGIN_TOKEN_TTL_SECONDS = 60

/** The kinds of token, used as the JWT audience. */
export type LoginTokenKind = 'web-login' | 'cli'

/** What a token says. */
export interface LoginTokenClaims {
  kind: LoginTokenKind
  /** The environment's name. */
  environment: string
  /** The environment's id (a token never outlives a deleted-and-recreated environment). */
  environmentId: string
  /** The caller's ARN. */
  principal: string
  /** The Airflow role granted (MWAA's name: Admin, Op, User, Viewer). */
  role: string
  /** Airflow user name (`AirflowIdentity`). */
  airflowIdentity: string
}

const AUDIENCE: Record<LoginTokenKind, string> = {
  'web-login': 'airdock:web-login',
  cli: 'airdock:cli',
}

/** Issues and redeems web login and CLI tokens. */
export class LoginTokens {
  private constructor(
    private readonly key: Uint8Array,
    private readonly store: AccessStore,
  ) {}

  /** Loads (or creates, once) the signing key from the access store. */
  static async open(store: AccessStore, sealer: Sealer): Promise<LoginTokens> {
    const sealed = await store.secretOnce(
      'login-token-key',
      await sealer.sealJson(randomBytes(32).toString('base64')),
    )
    const key = Buffer.from(await sealer.openJson<string>(sealed), 'base64')
    return new LoginTokens(new Uint8Array(key), store)
  }

  /** Issues a token valid for {@link LOGIN_TOKEN_TTL_SECONDS}. */
  async issue(claims: LoginTokenClaims): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT({
      env: claims.environment,
      envId: claims.environmentId,
      role: claims.role,
      aid: claims.airflowIdentity,
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.principal)
      .setAudience(AUDIENCE[claims.kind])
      .setIssuedAt(now)
      .setExpirationTime(now + LOGIN_TOKEN_TTL_SECONDS)
      .setJti(randomUUID())
      .sign(this.key)
  }

  /**
   * Verifies a token for `environment` (its name and id); a web login token is consumed (single use).
   * @throws AccessDeniedError when the token is malformed, forged, expired, of another kind or
   *   environment, or (web login) already used
   */
  async redeem(
    kind: LoginTokenKind,
    token: string,
    environment: { name: string; id: string },
  ): Promise<LoginTokenClaims> {
    let payload: Record<string, unknown>
    try {
      ;({ payload } = await jwtVerify(token, this.key, {
        audience: AUDIENCE[kind],
        algorithms: ['HS256'],
      }))
    } catch (err) {
      if (err instanceof errors.JWTExpired) {
        throw new AccessDeniedError('The token has expired; request a new one.')
      }
      throw new AccessDeniedError('The token is not valid.')
    }
    // Name and id: a token never outlives a deleted environment recreated under its name.
    if (payload.env !== environment.name || payload.envId !== environment.id) {
      throw new AccessDeniedError('The token was issued for another environment.')
    }
    if (kind === 'web-login') {
      const fresh = await this.store.redeemToken(
        String(payload.jti),
        new Date(Number(payload.exp) * 1000),
      )
      if (!fresh) throw new AccessDeniedError('The token has already been used.')
    }
    return {
      kind,
      environment: environment.name,
      environmentId: environment.id,
      principal: String(payload.sub),
      role: String(payload.role),
      airflowIdentity: String(payload.aid),
    }
  }
}
