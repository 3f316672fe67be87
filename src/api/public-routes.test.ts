/**
 * The endpoint's public routes (`/`, `/healthz`, `/metrics`) on the API app with access control
 * on: answered unsigned, never audited, nothing secret, and `/healthz` follows its probes.
 * The environment service is never called (a service whose every method throws).
 */
import type { Hono } from 'hono'
import { beforeEach, describe, expect, it } from 'vitest'
import { AuthenticationError } from '../iam/identity-service.js'
import { SigV4Error } from '../iam/sigv4.js'
import type { EnvironmentServicePort } from '../services/environment-service-port.js'
import type { AuditEvent } from '../store/access-store.js'
import type { AccessIdentity } from './access.js'
import { createApiApp } from './app.js'
import { AIRDOCK_VERSION, type HealthSource } from './public-routes.js'

/** A service port that must not be reached by these routes. */
const untouchedService = new Proxy({} as EnvironmentServicePort, {
  get: (_, name) => () => {
    throw new Error(`the environment service was called (${String(name)})`)
  },
})

/** Refuses every request as unsigned, as the real identity service does without a signature. */
const refusingIdentity: AccessIdentity = {
  authenticate: () =>
    Promise.reject(
      new AuthenticationError(
        new SigV4Error('MissingAuthenticationToken', 'Missing Authentication Token'),
      ),
    ),
  authorize: () => undefined,
  highestRole: () => 'Viewer',
}

let audits: AuditEvent[]
let errors: { obj: object; msg: string }[]

function build(health?: HealthSource, healthProbeTimeoutMs?: number): Hono {
  return createApiApp({
    service: untouchedService,
    region: 'us-east-1',
    accountId: '123456789012',
    logger: { info: () => undefined, error: (obj, msg) => void errors.push({ obj, msg }) },
    access: {
      identity: refusingIdentity,
      store: { appendAudit: (event) => Promise.resolve(void audits.push(event)) },
    },
    ...(health ? { health } : {}),
    ...(healthProbeTimeoutMs === undefined ? {} : { healthProbeTimeoutMs }),
  })
}

const healthy: HealthSource = {
  probeDatabase: () => Promise.resolve(),
  countByStatus: () => Promise.resolve({ AVAILABLE: 2, CREATING: 1 }),
}

beforeEach(() => {
  audits = []
  errors = []
})

describe('access control still holds beside the public routes', () => {
  it('an unsigned MWAA request is refused (403), so the routes below are open on purpose', async () => {
    const res = await build(healthy).request('http://127.0.0.1:8780/environments')
    expect(res.status).toBe(403)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('MissingAuthenticationTokenException')
  })

  it('only GET and HEAD are public: POST /healthz and GET /healthz/x need a signature', async () => {
    const app = build(healthy)
    expect((await app.request('http://127.0.0.1:8780/healthz', { method: 'POST' })).status).toBe(
      403,
    )
    expect((await app.request('http://127.0.0.1:8780/healthz/x')).status).toBe(403)
  })
})

describe('GET /healthz', () => {
  it('unsigned: control plane and database up, environments per status, the version', async () => {
    const res = await build(healthy).request('http://127.0.0.1:8780/healthz')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('x-amzn-RequestId')).toMatch(/^[0-9a-f-]{36}$/)
    expect(await res.json()).toEqual({
      status: 'ok',
      controlPlane: 'up',
      database: 'up',
      environments: { AVAILABLE: 2, CREATING: 1 },
      version: AIRDOCK_VERSION,
    })
    expect(audits).toEqual([])
  })

  it('503 with database "down" when the probe fails; the error is logged, not answered', async () => {
    const res = await build({
      probeDatabase: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8732 secret')),
      countByStatus: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:8732 secret')),
    }).request('http://127.0.0.1:8780/healthz')
    expect(res.status).toBe(503)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({
      status: 'unavailable',
      controlPlane: 'up',
      database: 'down',
      version: AIRDOCK_VERSION,
    })
    expect(text).not.toContain('ECONNREFUSED')
    expect(errors.map((e) => e.msg)).toContain('health check: the database is down')
  })

  it('a probe that never settles counts as down after the probe timeout', async () => {
    const res = await build(
      {
        probeDatabase: () => new Promise(() => undefined),
        countByStatus: () => healthy.countByStatus(),
      },
      50,
    ).request('http://127.0.0.1:8780/healthz')
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ database: 'down', environments: { AVAILABLE: 2 } })
  })

  it('the database up but the count failing: 200 without environments, the failure logged', async () => {
    const res = await build({
      probeDatabase: () => Promise.resolve(),
      countByStatus: () => Promise.reject(new Error('bad row')),
    }).request('http://127.0.0.1:8780/healthz')
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ status: 'ok', database: 'up' })
    expect(body).not.toHaveProperty('environments')
    expect(errors.map((e) => e.msg)).toContain('health check: environments not counted')
  })

  it('without a health source it reports the control plane only', async () => {
    const res = await build().request('http://127.0.0.1:8780/healthz')
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ status: 'ok', controlPlane: 'up', version: AIRDOCK_VERSION })
  })
})

describe('GET /', () => {
  it('a browser gets a short HTML page: the endpoint, the version, the docs, the console', async () => {
    const res = await build(healthy).request('http://127.0.0.1:8780/', {
      headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    const html = await res.text()
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).toContain('http://127.0.0.1:8780')
    expect(html).toContain(AIRDOCK_VERSION)
    expect(html).toContain('README.md')
    expect(html).toContain('docs/openapi.yaml')
    expect(html).toMatch(/Amazon MWAA API<\/strong> is served at this endpoint/)
    expect(html).toMatch(/console is not available yet/)
    expect(audits).toEqual([])
  })

  it('any other client gets the same facts as JSON', async () => {
    const res = await build(healthy).request('http://localhost:8780/', {
      headers: { accept: '*/*' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toMatchObject({
      service: 'airdock',
      version: AIRDOCK_VERSION,
      endpoint: 'http://localhost:8780',
      mwaa: { endpoint: 'http://localhost:8780', signingName: 'airflow' },
      docs: { readme: 'README.md', docs: 'docs/', openapi: 'docs/openapi.yaml' },
      health: '/healthz',
      console: 'not available yet',
    })
  })

  it('the endpoint it names comes from the request (the Host header), so it is escaped', async () => {
    const res = await build(healthy).request('http://x&y"z/', { headers: { accept: 'text/html' } })
    const html = await res.text()
    expect(html).toContain('<code>http://x&amp;y&quot;z</code>')
    expect(html).not.toContain('x&y')
  })
})

describe('GET /metrics', () => {
  it('unsigned: 404 saying metrics are not served yet', async () => {
    const res = await build(healthy).request('http://127.0.0.1:8780/metrics')
    expect(res.status).toBe(404)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('ServiceNotServedException')
    const body = (await res.json()) as { message: string }
    expect(body.message).toMatch(/Metrics are not served by airdock yet/)
    expect(body.message).toMatch(/planned/)
  })
})
