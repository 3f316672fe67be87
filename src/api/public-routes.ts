/**
 * The endpoint's unauthenticated routes, for a person or a probe that finds the endpoint:
 *
 * | route | answer |
 * | --- | --- |
 * | `GET /` | what this endpoint is: a short HTML page for a browser (`Accept: text/html`), the same facts as JSON otherwise |
 * | `GET /healthz` | the control plane and its database up, environments per status (200), or the database down (503) |
 * | `GET /metrics` | 404: metrics are not served yet (Prometheus text is planned, DESIGN.md decision 11) |
 *
 * They say nothing secret: no names of environments, users or paths of this machine; the
 * endpoint they name is the one the request was sent to. The access middleware lets them
 * through unsigned (`isPublicRoute` in `access.ts`).
 */
import { readFileSync } from 'node:fs'
import type { Context, Hono } from 'hono'
import { SERVED_SIGNING_NAME, SERVICE_NOT_SERVED } from './unserved-services.js'

/**
 * What `/healthz` asks of the control plane. Both may reject (or not settle within the probe
 * timeout); their errors are logged, never answered.
 */
export interface HealthSource {
  /** Runs a trivial query on the control-plane database; rejects when the database does not answer. */
  probeDatabase(): Promise<void>
  /**
   * The number of environments in each MWAA status (`{AVAILABLE: 2, CREATING: 1}`), DELETED
   * ones past their retention left out; statuses without environments may be absent.
   */
  countByStatus(): Promise<Record<string, number>>
}

/** The body of `GET /healthz`. */
export interface HealthReport {
  /** `ok` when the control plane and its database answer, `unavailable` otherwise (HTTP 503). */
  status: 'ok' | 'unavailable'
  /** The control plane answered (always `up`: otherwise nothing answers). */
  controlPlane: 'up'
  /** The control-plane database answered a trivial query in time; absent without a {@link HealthSource}. */
  database?: 'up' | 'down'
  /** Environments per MWAA status; absent when they could not be counted. */
  environments?: Record<string, number>
  /** airdock's version (package.json). */
  version: string
}

/** What {@link registerPublicRoutes} needs. */
export interface PublicRoutesOptions {
  /** Without it `/healthz` reports the control plane only (unit tests of other layers). */
  health?: HealthSource
  /** How long `/healthz` waits for each probe, in ms (default {@link DEFAULT_HEALTH_PROBE_TIMEOUT_MS}). */
  healthProbeTimeoutMs?: number
  logger: { error(obj: object, msg: string): void }
}

/** Default wait for each `/healthz` probe: 3 s (a probe that hangs means "down"). */
export const DEFAULT_HEALTH_PROBE_TIMEOUT_MS = 3_000

/** airdock's version, from package.json (read once). */
export const AIRDOCK_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
).version

/** Where the documentation is, relative to the root of airdock's source tree. */
const DOCS = {
  readme: 'README.md',
  docs: 'docs/',
  openapi: 'docs/openapi.yaml',
} as const

/** The paths of the public routes (GET and HEAD only). */
export const PUBLIC_PATHS: readonly string[] = ['/', '/healthz', '/metrics']

/** The facts `GET /` gives (its JSON form). */
export interface EndpointDescription {
  service: 'airdock'
  version: string
  /** The endpoint as the request addressed it (`http://<Host>`). */
  endpoint: string
  /** The Amazon MWAA API: served here, SigV4-signed with signing name `airflow`. */
  mwaa: { endpoint: string; signingName: string; description: string }
  /** Where the documentation is (paths in airdock's source tree). */
  docs: { readme: string; docs: string; openapi: string }
  health: string
  console: string
}

/** Adds `GET /`, `GET /healthz` and `GET /metrics` to the app (before its not-found handler). */
export function registerPublicRoutes(app: Hono, options: PublicRoutesOptions): void {
  const timeoutMs = options.healthProbeTimeoutMs ?? DEFAULT_HEALTH_PROBE_TIMEOUT_MS

  app.get('/', (c) => {
    const description = describeEndpoint(new URL(c.req.url).origin)
    if (/\btext\/html\b/i.test(c.req.header('accept') ?? '')) {
      return c.html(rootPage(description))
    }
    return c.json(description)
  })

  app.get('/healthz', async (c) => {
    const report = await healthReport(options.health, timeoutMs, options.logger)
    return c.json(report, report.status === 'ok' ? 200 : 503)
  })

  app.get('/metrics', (c) => metricsNotServed(c))
}

/** The facts about the endpoint at `origin` (e.g. `http://127.0.0.1:8780`). */
export function describeEndpoint(origin: string): EndpointDescription {
  return {
    service: 'airdock',
    version: AIRDOCK_VERSION,
    endpoint: origin,
    mwaa: {
      endpoint: origin,
      signingName: SERVED_SIGNING_NAME,
      description: `The Amazon MWAA API: use --endpoint-url ${origin} with the AWS CLI, boto3 or an AWS SDK; every call is signed (SigV4).`,
    },
    docs: { ...DOCS },
    health: '/healthz',
    console: 'not available yet',
  }
}

/**
 * Probes the control plane's parts for `/healthz`: the database query and the status counts run
 * side by side, each given `timeoutMs`.
 */
export async function healthReport(
  health: HealthSource | undefined,
  timeoutMs: number,
  logger: PublicRoutesOptions['logger'],
): Promise<HealthReport> {
  if (!health) return { status: 'ok', controlPlane: 'up', version: AIRDOCK_VERSION }
  const [database, counts] = await Promise.allSettled([
    withTimeout(health.probeDatabase(), timeoutMs, 'the database probe'),
    withTimeout(health.countByStatus(), timeoutMs, 'counting environments by status'),
  ])
  if (database.status === 'rejected') {
    logger.error({ err: database.reason as unknown }, 'health check: the database is down')
  }
  if (counts.status === 'rejected') {
    logger.error({ err: counts.reason as unknown }, 'health check: environments not counted')
  }
  const up = database.status === 'fulfilled'
  return {
    status: up ? 'ok' : 'unavailable',
    controlPlane: 'up',
    database: up ? 'up' : 'down',
    ...(counts.status === 'fulfilled' ? { environments: counts.value } : {}),
    version: AIRDOCK_VERSION,
  }
}

/** 404 with {@link SERVICE_NOT_SERVED}: metrics are not served yet. */
function metricsNotServed(c: Context): Response {
  const message =
    'Metrics are not served by airdock yet: Prometheus text at /metrics and a CloudWatch ' +
    'metrics API are planned. Until then `airdock status` shows workers, web servers and their load.'
  return c.json({ message }, 404, { 'x-amzn-ErrorType': SERVICE_NOT_SERVED })
}

/** Rejects with an Error naming `what` when `promise` does not settle within `timeoutMs`. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Escapes text for HTML (the endpoint comes from the request's Host header). */
function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

/** The root page for browsers: what this endpoint is, its version, the docs and the console. */
function rootPage(d: EndpointDescription): string {
  const endpoint = escapeHtml(d.endpoint)
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>airdock ${escapeHtml(d.version)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:3rem auto;padding:0 1rem;line-height:1.5}code{background:#f2f2f2;padding:0 .25em}</style>
</head>
<body>
<h1>airdock</h1>
<p>This is the endpoint of an airdock control plane, version <strong>${escapeHtml(d.version)}</strong>: <code>${endpoint}</code>.</p>
<ul>
<li><strong>The Amazon MWAA API</strong> is served at this endpoint. Point the AWS CLI, boto3 or an AWS SDK at it with <code>--endpoint-url ${endpoint}</code>; every call is signed (SigV4, signing name <code>${escapeHtml(d.mwaa.signingName)}</code>).</li>
<li><strong>Documentation</strong>: <code>${d.docs.readme}</code> and <code>${d.docs.docs}</code> in airdock's source tree; the API is described in <code>${d.docs.openapi}</code>.</li>
<li><strong>Health</strong>: <a href="${d.health}"><code>${d.health}</code></a>.</li>
<li><strong>Console</strong>: the web console is not available yet.</li>
</ul>
</body>
</html>
`
}
