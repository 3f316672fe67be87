/**
 * The MWAA API as an HTTP application (Hono): routes, body parsing, path-label decoding and
 * error mapping. Handlers only validate and call the environment service (DESIGN.md decision 3).
 *
 * Routing is by method and path only: the `Host` header is ignored, so requests work with or
 * without the `api.` / `env.` host prefixes SDKs add (reference §0, §12). Every response carries
 * `x-amzn-RequestId` and `content-type: application/json` — but the root page for browsers
 * (HTML) and the errors for services airdock does not serve, which take their protocol's type.
 */
import { randomUUID } from 'node:crypto'
import { Hono, type Context } from 'hono'
import type { BlankEnv } from 'hono/types'
import { bodyLimit } from 'hono/body-limit'
import { AccessDeniedError, ControlPlaneError, ValidationError } from '../domain/errors.js'
import {
  validateCreateEnvironment,
  validateEnvironmentArn,
  validateEnvironmentName,
  validateInvokeRestApi,
  validateListEnvironments,
  validateTagKeys,
  validateTags,
  validateUpdateEnvironment,
} from '../domain/validation.js'
import type { EnvironmentServicePort } from '../services/environment-service-port.js'
import type { AccessStore } from '../store/access-store.js'
import { accessMiddleware, auditMiddleware, principalOf, type AccessIdentity } from './access.js'
import { toErrorResponse } from './error-mapper.js'
import { registerPublicRoutes, type HealthSource } from './public-routes.js'
import { unservedServiceMiddleware } from './unserved-services.js'
import {
  fromWire,
  isJsonObject,
  TAG_RESOURCE_INPUT,
  toWireArnOutput,
  toWireGetEnvironmentOutput,
  toWireInvokeRestApiOutput,
  toWireListEnvironmentsOutput,
  toWireListTagsOutput,
  WIRE_QUERY_PARAMETERS,
} from './wire.js'

/** The logging the API needs (a pino logger fits): constant messages, variables in fields. */
export interface ApiLogger {
  info(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/** What {@link createApiApp} needs. */
export interface ApiAppOptions {
  service: EnvironmentServicePort
  /** Region reported in ARNs (`AIRDOCK_REGION`). */
  region: string
  /** Account reported in ARNs (`AIRDOCK_ACCOUNT_ID`). */
  accountId: string
  logger: ApiLogger
  /** Largest request body accepted, in bytes (default 1 MiB); larger → 400 ValidationException. */
  maxBodyBytes?: number
  /**
   * Access control: SigV4 authentication, IAM authorization and the audit trail of every
   * request. `startControlPlane` always passes it; without it (unit tests of other layers)
   * nothing is authenticated and the token and role operations answer AccessDeniedException.
   */
  access?: { identity: AccessIdentity; store: Pick<AccessStore, 'appendAudit'> }
  /**
   * What the unauthenticated `GET /healthz` probes: the control-plane database (a trivial query)
   * and the environments per status. `startControlPlane` always passes it; without it
   * `/healthz` reports the control plane only. See `public-routes.ts`.
   */
  health?: HealthSource
  /** How long `/healthz` waits for each probe before it reports it down, in ms (default 3000). */
  healthProbeTimeoutMs?: number
}

/**
 * Hono environment of the API app. It has no context variables (the request id lives in a
 * `WeakMap`), so `Hono<ApiEnv>` is plain `Hono`; the name lets route modules (extensions) say
 * which app they extend.
 */
export type ApiEnv = BlankEnv

/** A body over the limit (400 ValidationException; the connection is closed after it). */
class BodyTooLargeError extends ValidationError {}

/**
 * Content types a route may choose instead of JSON: the root page's HTML, and the XML, CBOR or
 * AWS JSON of an unserved service's error (`unserved-services.ts`).
 */
const KEPT_CONTENT_TYPE = /^(text\/html|text\/xml|application\/cbor|application\/x-amz-json-)/

/** Default body size limit: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024

/**
 * Creates the MWAA API application. Operations (reference §1):
 *
 * | operation | route | success body |
 * | --- | --- | --- |
 * | CreateEnvironment | `PUT /environments/{Name}` | `{Arn}` |
 * | GetEnvironment | `GET /environments/{Name}` | `{Environment}` |
 * | ListEnvironments | `GET /environments?NextToken&MaxResults` | `{Environments, NextToken?}` |
 * | UpdateEnvironment | `PATCH /environments/{Name}` | `{Arn}` |
 * | DeleteEnvironment | `DELETE /environments/{Name}` | `{}` |
 * | TagResource | `POST /tags/{ResourceArn}` `{Tags}` | `{}` |
 * | UntagResource | `DELETE /tags/{ResourceArn}?tagKeys=…&tagKeys=…` | `{}` |
 * | ListTagsForResource | `GET /tags/{ResourceArn}` | `{Tags}` |
 * | InvokeRestApi | `POST /restapi/{Name}` | `{RestApiStatusCode, RestApiResponse}` |
 * | CreateWebLoginToken | `POST /webtoken/{Name}` | `{WebToken, WebServerHostname, IamIdentity, AirflowIdentity}` |
 * | CreateCliToken | `POST /clitoken/{Name}` | `{CliToken, WebServerHostname}` |
 *
 * Unauthenticated: `GET /` (what this endpoint is), `GET /healthz` and `GET /metrics`
 * (`public-routes.ts`). A request signed for another AWS service than `airflow` is answered
 * `ServiceNotServedException` naming that service (`unserved-services.ts`).
 *
 * With `access`, every request is authenticated (SigV4) and authorized before its handler runs
 * (`access.ts`), and requests that change something or issue a token are audited.
 *
 * Path labels are percent-decoded exactly once from the raw URL (SDKs send
 * `arn%3Aaws%3Aairflow%3A…%2FMyEnv`). Errors become MWAA error responses
 * (`toErrorResponse`); an unknown method or path is 404 `UnknownOperationException`.
 */
export function createApiApp(options: ApiAppOptions): Hono<ApiEnv> {
  const { service, region, accountId, logger } = options
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const app = new Hono<ApiEnv>()
  /** Request id of each request in flight, keyed by its Hono context. */
  const requestIds = new WeakMap<object, string>()

  app.use('*', async (c, next) => {
    const requestId = randomUUID()
    requestIds.set(c, requestId)
    const started = performance.now()
    await next()
    c.res.headers.set('x-amzn-RequestId', requestId)
    if (!KEPT_CONTENT_TYPE.test(c.res.headers.get('content-type') ?? '')) {
      c.res.headers.set('content-type', 'application/json')
    }
    logger.info(
      {
        requestId,
        method: c.req.method,
        path: new URL(c.req.url).pathname,
        status: c.res.status,
        durationMs: Math.round(performance.now() - started),
      },
      'request handled',
    )
  })

  // Before authentication: the answer names the service the request was signed for, nothing more.
  app.use(
    '*',
    unservedServiceMiddleware((c) => requestIds.get(c) ?? 'unknown'),
  )

  const access = options.access
  const accessOptions = access && {
    ...access,
    region,
    accountId,
    requestIdOf: (c: Context) => requestIds.get(c) ?? 'unknown',
    logger,
  }
  if (accessOptions) app.use('*', auditMiddleware(accessOptions))

  app.use(
    '*',
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new BodyTooLargeError(`The request body is larger than ${maxBodyBytes} bytes.`)
      },
    }),
  )

  if (accessOptions) app.use('*', accessMiddleware(accessOptions))

  registerPublicRoutes(app, {
    ...(options.health ? { health: options.health } : {}),
    ...(options.healthProbeTimeoutMs !== undefined
      ? { healthProbeTimeoutMs: options.healthProbeTimeoutMs }
      : {}),
    logger,
  })

  /** The highest Airflow role the caller may use on environment `name` for `action`. */
  const roleFor = (c: Context, action: string, name: string) => {
    if (!access) throw new AccessDeniedError('Access control is not configured.')
    return access.identity.highestRole(principalOf(c), action, name)
  }

  app.put('/environments/:name', async (c) => {
    const request = validateCreateEnvironment(pathLabel(c, 1), await jsonBody(c))
    return c.json(toWireArnOutput(await service.create(request)))
  })

  app.get('/environments', async (c) => {
    const query = new URL(c.req.url).searchParams
    const { maxResults, nextToken } = validateListEnvironments(
      query.get(WIRE_QUERY_PARAMETERS.maxResults) ?? undefined,
      query.get(WIRE_QUERY_PARAMETERS.nextToken) ?? undefined,
    )
    const page = await service.list(maxResults, nextToken)
    return c.json(toWireListEnvironmentsOutput(page.names, page.nextToken))
  })

  app.get('/environments/:name', async (c) => {
    const view = await service.get(validateEnvironmentName(pathLabel(c, 1)))
    return c.json(toWireGetEnvironmentOutput(view, region, accountId))
  })

  app.patch('/environments/:name', async (c) => {
    const request = validateUpdateEnvironment(pathLabel(c, 1), await jsonBody(c))
    return c.json(toWireArnOutput(await service.update(request)))
  })

  app.delete('/environments/:name', async (c) => {
    await service.delete(validateEnvironmentName(pathLabel(c, 1)))
    return c.json({})
  })

  app.post('/tags/:arn', async (c) => {
    const arn = validateEnvironmentArn(pathLabel(c, 1))
    const body = await jsonBody(c)
    if (!isJsonObject(body)) throw new ValidationError('The request body must be a JSON object.')
    const tags = validateTags(fromWire(body, TAG_RESOURCE_INPUT).tags, true)
    await service.tagResource(arn, tags)
    return c.json({})
  })

  app.delete('/tags/:arn', async (c) => {
    const arn = validateEnvironmentArn(pathLabel(c, 1))
    const tagKeys = validateTagKeys(
      new URL(c.req.url).searchParams.getAll(WIRE_QUERY_PARAMETERS.tagKeys),
    )
    await service.untagResource(arn, tagKeys)
    return c.json({})
  })

  app.get('/tags/:arn', async (c) => {
    const tags = await service.listTags(validateEnvironmentArn(pathLabel(c, 1)))
    return c.json(toWireListTagsOutput(tags))
  })

  app.post('/restapi/:name', async (c) => {
    const request = validateInvokeRestApi(pathLabel(c, 1), await jsonBody(c))
    const role = roleFor(c, 'airflow:InvokeRestApi', request.name)
    return c.json(toWireInvokeRestApiOutput(await service.invokeRestApi(request, role)))
  })

  app.post('/webtoken/:name', async (c) => {
    const name = validateEnvironmentName(pathLabel(c, 1))
    const role = roleFor(c, 'airflow:CreateWebLoginToken', name)
    return c.json(await service.createWebLoginToken(name, role, principalOf(c).arn))
  })

  app.post('/clitoken/:name', async (c) => {
    const name = validateEnvironmentName(pathLabel(c, 1))
    if (!access) throw new AccessDeniedError('Access control is not configured.')
    return c.json(await service.createCliToken(name, principalOf(c).arn))
  })

  app.notFound((c) => {
    const body = { message: `No operation matches ${c.req.method} ${new URL(c.req.url).pathname}.` }
    return c.json(body, 404, { 'x-amzn-ErrorType': 'UnknownOperationException' })
  })

  app.onError((err, c) => {
    const requestId = requestIds.get(c) ?? randomUUID()
    const response = toErrorResponse(err, requestId)
    if (err instanceof ControlPlaneError && response.status < 500) {
      logger.info({ requestId, errorType: err.code, status: response.status }, 'request rejected')
    } else {
      logger.error({ requestId, err }, 'request failed')
    }
    return new Response(JSON.stringify(response.body), {
      status: response.status,
      // The rest of an oversized body is never read: the connection cannot be reused.
      headers:
        err instanceof BodyTooLargeError
          ? { ...response.headers, connection: 'close' }
          : response.headers,
    })
  })

  return app
}

/**
 * The `index`-th segment of the request path (1 = the segment after the first), percent-decoded
 * exactly once. Read from the raw URL rather than the router's already-decoded path, so
 * `%253A` arrives as `%3A`, never as `:`.
 * @throws ValidationError for malformed percent-encoding
 */
function pathLabel(c: Context, index: number): string {
  const raw = new URL(c.req.url).pathname.split('/')[index + 1] ?? ''
  try {
    return decodeURIComponent(raw)
  } catch {
    throw new ValidationError(`The path segment '${raw}' is not valid percent-encoding.`)
  }
}

/**
 * The request body as JSON; an empty body is `{}` (SDKs send `{}` for operations without body
 * members, some clients send nothing).
 * @throws ValidationError when the body is not valid JSON
 */
export async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text()
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new ValidationError('The request body could not be parsed as JSON.')
  }
}
