/**
 * Access control of the API (issue 4): which IAM action and resource each route is, request
 * authentication (SigV4) and authorization before any handler runs, and the audit trail.
 *
 * Actions and resources follow MWAA's IAM reference: `airflow:<Operation>` on the environment
 * ARN, `airflow:ListEnvironments` on `*`, tag operations on the ARN in the path, and
 * `airflow:CreateWebLoginToken` / `airflow:InvokeRestApi` on
 * `arn:aws:airflow:{region}:{account}:role/{Name}/{AirflowRole}` (reference §1.4, §2 "ARN
 * formats"). airdock's extensions use the prefix `airdock:` and only administrators' policies
 * (`*`) allow them by default.
 */
import type { Context, MiddlewareHandler } from 'hono'
import {
  airflowRoleArn,
  environmentArn,
  iamUserArn,
  KMS_KEY_ID_SOURCE,
  kmsKeyArn,
} from '../domain/arns.js'
import { AccessDeniedError, ControlPlaneError, ValidationError } from '../domain/errors.js'
import type { IdentityService, Principal } from '../iam/identity-service.js'
import type { AccessStore } from '../store/access-store.js'
import { PUBLIC_PATHS } from './public-routes.js'

/** 404 `UnknownOperationException`: no MWAA operation or extension has this method and path. */
export class UnknownOperationError extends ControlPlaneError {
  readonly code = 'UnknownOperationException'
  readonly httpStatus = 404
}

/** One route's authorization. */
export interface RouteAccess {
  /** IAM action, e.g. `airflow:CreateEnvironment`. */
  action: string
  /** The resource ARN the action is authorized on (`*` when none). */
  resource: string
  /**
   * `true`: the resource is an Airflow role pattern (`role/{Name}/*`); the request passes when
   * any role is allowed and the handler picks the highest one.
   */
  roleScoped?: boolean
  /** Recorded in the audit trail (changes something or issues a token). */
  audited: boolean
  /** Authenticated by the token it carries instead of SigV4 (the gateway's calls). */
  tokenAuthenticated?: boolean
}

/** Region and account used to build ARNs. */
export interface ArnContext {
  region: string
  accountId: string
}

/**
 * Maps a request to its action and resource.
 * @param method - HTTP method
 * @param segments - percent-decoded path segments (without the leading empty one)
 * @returns undefined for a route that does not exist (answered 404 after authentication)
 */
export function routeAccess(
  method: string,
  segments: string[],
  arns: ArnContext,
): RouteAccess | undefined {
  const env = (name: string): string => environmentArn(arns.region, arns.accountId, name)
  const role = (name: string): string => airflowRoleArn(arns.region, arns.accountId, name, '*')
  const user = (name: string): string => iamUserArn(arns.accountId, name)
  const [a, b, c, d, e, f] = segments
  const n = segments.length
  const op = (action: string, resource: string, audited = method !== 'GET'): RouteAccess => ({
    action,
    resource,
    audited,
  })
  if (a === 'environments') {
    if (n === 1 && method === 'GET') return op('airflow:ListEnvironments', '*')
    if (n !== 2) return undefined
    const actions: Record<string, string> = {
      PUT: 'airflow:CreateEnvironment',
      GET: 'airflow:GetEnvironment',
      PATCH: 'airflow:UpdateEnvironment',
      DELETE: 'airflow:DeleteEnvironment',
    }
    return actions[method] ? op(actions[method], env(b!)) : undefined
  }
  if (a === 'tags' && n === 2) {
    const actions: Record<string, string> = {
      POST: 'airflow:TagResource',
      DELETE: 'airflow:UntagResource',
      GET: 'airflow:ListTagsForResource',
    }
    return actions[method] ? op(actions[method], b!) : undefined
  }
  if (method === 'POST' && n === 2) {
    if (a === 'restapi') return { ...op('airflow:InvokeRestApi', role(b!)), roleScoped: true }
    if (a === 'webtoken') {
      return { ...op('airflow:CreateWebLoginToken', role(b!)), roleScoped: true }
    }
    if (a === 'clitoken') return op('airflow:CreateCliToken', env(b!))
  }
  if (a !== 'airdock' || b !== 'v1') return undefined
  if (c === 'environments' && n === 4 && method === 'GET') {
    return op('airdock:DescribeEnvironment', env(d!))
  }
  if (c === 'environments' && n === 5 && e === 'validate' && method === 'POST') {
    return op('airdock:ValidateEnvironmentInputs', env(d!), false)
  }
  if (c === 'web-login' && n === 4 && method === 'POST') {
    return { ...op('airdock:RedeemWebLoginToken', env(d!)), tokenAuthenticated: true }
  }
  if (c === 'cli' && n === 4 && method === 'POST') {
    return { ...op('airdock:RunCliCommand', env(d!)), tokenAuthenticated: true }
  }
  if (c === 'audit' && n === 3 && method === 'GET') return op('airdock:ListAuditEvents', '*')
  if (c === 'kms' && d === 'keys') {
    if (n === 4 && method === 'GET') return op('airdock:ListKeys', '*')
    if (n === 4 && method === 'POST') return op('airdock:CreateKey', '*')
    if (n === 5 && method === 'DELETE') {
      // Authorized on the key's ARN however the caller names it (id, key/id or ARN).
      const id = new RegExp(`${KMS_KEY_ID_SOURCE}$`).exec(e!)?.[0]
      return op('airdock:DeleteKey', id ? kmsKeyArn(arns.region, arns.accountId, id) : e!)
    }
    return undefined
  }
  if (c === 'iam') {
    if (d === 'users') {
      if (n === 4 && method === 'GET') return op('airdock:ListUsers', '*')
      if (n === 5 && method === 'PUT') return op('airdock:CreateUser', user(e!))
      if (n === 5 && method === 'GET') return op('airdock:GetUser', user(e!))
      if (n === 5 && method === 'DELETE') return op('airdock:DeleteUser', user(e!))
      if (n === 7 && f === 'policies' && method === 'PUT') {
        return op('airdock:PutUserPolicy', user(e!))
      }
      if (n === 7 && f === 'policies' && method === 'DELETE') {
        return op('airdock:DeleteUserPolicy', user(e!))
      }
      if (n === 6 && f === 'access-keys' && method === 'POST') {
        return op('airdock:CreateAccessKey', user(e!))
      }
      if (n === 6 && f === 'access-keys' && method === 'GET') {
        return op('airdock:ListAccessKeys', user(e!))
      }
    }
    if (d === 'access-keys' && n === 5 && method === 'DELETE') {
      return op('airdock:DeleteAccessKey', '*')
    }
  }
  return undefined
}

/**
 * Whether a request is for one of the endpoint's public routes (`GET`/`HEAD` of `/`, `/healthz`,
 * `/metrics`, see `public-routes.ts`): answered without a signature, not audited (they change
 * nothing and say nothing secret).
 * @param pathname - the request path as received
 */
export function isPublicRoute(method: string, pathname: string): boolean {
  return (method === 'GET' || method === 'HEAD') && PUBLIC_PATHS.includes(pathname)
}

/** What the API needs of the identity service. */
export type AccessIdentity = Pick<IdentityService, 'authenticate' | 'authorize' | 'highestRole'>

/** What the access middleware needs. */
export interface AccessMiddlewareOptions extends ArnContext {
  identity: AccessIdentity
  store: Pick<AccessStore, 'appendAudit'>
  /** The request id of a request (set by the API's first middleware). */
  requestIdOf: (c: Context) => string
  logger: { error(obj: object, msg: string): void }
}

const principals = new WeakMap<object, Principal>()
/** Token-authenticated routes record who the token named. */
const tokenPrincipals = new WeakMap<object, string>()

/**
 * The authenticated caller of a SigV4-signed request.
 * @throws AccessDeniedError when the route was not authenticated (a bug: never for API routes)
 */
export function principalOf(c: Context): Principal {
  const principal = principals.get(c)
  if (!principal) throw new AccessDeniedError('The request was not authenticated.')
  return principal
}

/** Records, for the audit trail, who a token-authenticated request acted for. */
export function setTokenPrincipal(c: Context, principal: string): void {
  tokenPrincipals.set(c, principal)
}

/** What each request's audit record needs, noted by the access middleware. */
const auditNotes = new WeakMap<object, { access: RouteAccess; principal: string }>()

/**
 * Authenticates (SigV4) and authorizes every request before its handler runs. Unknown routes
 * still need a valid signature (then 404). Token-authenticated routes (the gateway's) and the
 * public routes ({@link isPublicRoute}) pass through; the former's handlers verify the token.
 */
export function accessMiddleware(options: AccessMiddlewareOptions): MiddlewareHandler {
  return async (c, next) => {
    const url = new URL(c.req.url)
    if (isPublicRoute(c.req.method, url.pathname)) return next()
    const rawSegments = url.pathname.split('/').slice(1)
    let segments: string[] | undefined
    try {
      segments = rawSegments.map((s) => decodeURIComponent(s))
    } catch {
      segments = undefined
    }
    // Hono answers HEAD with the GET handler: it needs the GET route's authorization.
    const method = c.req.method === 'HEAD' ? 'GET' : c.req.method
    const access = segments && routeAccess(method, segments, options)
    const note = access ? { access, principal: 'anonymous' } : undefined
    if (note) auditNotes.set(c, note)
    if (!access?.tokenAuthenticated) {
      const caller = await options.identity.authenticate({
        method: c.req.method,
        rawPath: url.pathname,
        rawQuery: url.search.slice(1),
        headers: Object.fromEntries(c.req.raw.headers.entries()),
        body: new Uint8Array(await c.req.arrayBuffer()),
      })
      if (note) note.principal = caller.arn
      principals.set(c, caller)
      if (!access) {
        // No handler runs without an authorization decision: an unknown route (or a path that
        // is not valid percent-encoding) is answered here.
        throw segments
          ? new UnknownOperationError(`No operation matches ${c.req.method} ${url.pathname}.`)
          : new ValidationError(`The path '${url.pathname}' is not valid percent-encoding.`)
      }
      if (access.roleScoped) {
        // Passes when any Airflow role is allowed; the handler picks the highest.
        options.identity.highestRole(caller, access.action, segments![1]!)
      } else {
        options.identity.authorize(caller, access.action, access.resource)
      }
    }
    await next()
  }
}

/**
 * Writes the audit record of every request that changes something or issues a token, whatever
 * its outcome (time, principal, action, resource, source address, result, error name, request
 * id — never a body or secret). Runs outside the access middleware, so it sees the final
 * response, including authentication and authorization failures.
 */
export function auditMiddleware(options: AccessMiddlewareOptions): MiddlewareHandler {
  return async (c, next) => {
    await next()
    const note = auditNotes.get(c)
    if (!note?.access.audited) return
    const status = c.res.status
    const errorCode =
      status >= 400 ? (c.res.headers.get('x-amzn-ErrorType') ?? undefined) : undefined
    await options.store
      .appendAudit({
        at: new Date(),
        principal: tokenPrincipals.get(c) ?? note.principal,
        action: note.access.action,
        resource: note.access.resource,
        sourceAddress: sourceAddressOf(c),
        result: status < 400 ? 'Success' : 'Failure',
        ...(errorCode ? { errorCode } : {}),
        requestId: options.requestIdOf(c),
      })
      .catch((err: unknown) => options.logger.error({ err }, 'could not write the audit record'))
  }
}

/** The client's address (the socket's peer; proxies' headers are not trusted). */
function sourceAddressOf(c: Context): string {
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)
    ?.incoming
  return incoming?.socket?.remoteAddress ?? 'unknown'
}
