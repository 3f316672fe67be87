import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../observability/logger.js'
import { Gateway, gatewayListenAddresses } from './gateway.js'

const servers: http.Server[] = []
let gateway: Gateway | undefined

async function upstream(name: string): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name })
      res.end(
        JSON.stringify({
          name,
          method: req.method,
          url: req.url,
          body: Buffer.concat(chunks).toString(),
          forwardedHost: req.headers['x-forwarded-host'],
        }),
      )
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  servers.push(server)
  return { port: (server.address() as AddressInfo).port, server }
}

async function startGateway(maxBufferedBodyBytes?: number): Promise<Gateway> {
  gateway = await Gateway.start({
    hosts: ['127.0.0.1'],
    port: 0,
    logger: createLogger('silent'),
    ...(maxBufferedBodyBytes ? { maxBufferedBodyBytes } : {}),
  })
  return gateway
}

afterEach(async () => {
  await gateway?.close()
  gateway = undefined
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

describe('Gateway', () => {
  it('balances requests round-robin and forwards method, path, body and the original host', async () => {
    const a = await upstream('a')
    const b = await upstream('b')
    const g = await startGateway()
    g.setUpstreams([
      { host: '127.0.0.1', port: a.port },
      { host: '127.0.0.1', port: b.port },
    ])
    const seen: string[] = []
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`http://127.0.0.1:${g.port}/api/v2/dags?limit=5`, {
        method: 'POST',
        body: '{"x":1}',
      })
      const body = (await res.json()) as {
        name: string
        url: string
        body: string
        forwardedHost: string
      }
      expect(body).toMatchObject({
        url: '/api/v2/dags?limit=5',
        body: '{"x":1}',
        forwardedHost: `127.0.0.1:${g.port}`,
      })
      seen.push(body.name)
    }
    expect(seen.sort()).toEqual(['a', 'a', 'b', 'b'])
  })

  it('retries on the next upstream when one refuses the connection, so no request fails', async () => {
    const a = await upstream('a')
    const dead = await upstream('dead')
    await new Promise((r) => dead.server.close(r))
    const g = await startGateway()
    g.setUpstreams([
      { host: '127.0.0.1', port: dead.port },
      { host: '127.0.0.1', port: a.port },
    ])
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://127.0.0.1:${g.port}/health`)
      expect(res.status).toBe(200)
      expect(res.headers.get('x-upstream')).toBe('a')
    }
  })

  it('answers 503 when no api-server is available and 413 for a body over the buffer limit', async () => {
    const g = await startGateway(1024)
    expect((await fetch(`http://127.0.0.1:${g.port}/`)).status).toBe(503)
    const a = await upstream('a')
    g.setUpstreams([{ host: '127.0.0.1', port: a.port }])
    const res = await fetch(`http://127.0.0.1:${g.port}/`, {
      method: 'POST',
      body: 'x'.repeat(4096),
    })
    expect(res.status).toBe(413)
  })
})

describe('Gateway MWAA routes', () => {
  /** A stand-in for the control plane's token routes that records what it was asked. */
  async function controlPlane(): Promise<{
    url: string
    calls: { url: string; body: string; auth?: string }[]
  }> {
    const calls: { url: string; body: string; auth?: string }[] = []
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        calls.push({
          url: req.url ?? '',
          body,
          ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
        })
        if (req.url === '/airdock/v1/web-login/env1') {
          const ok = (JSON.parse(body) as { WebToken: string }).WebToken === 'good-token'
          res.writeHead(ok ? 200 : 403, { 'content-type': 'application/json' })
          res.end(
            JSON.stringify(
              ok
                ? { AirflowToken: 'airflow-jwt', MaxAgeSeconds: 600 }
                : { Message: 'The token has already been used.' },
            ),
          )
          return
        }
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ stdout: 'b3V0', stderr: '' }))
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    servers.push(server)
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls }
  }

  async function start(cp: { url: string }): Promise<Gateway> {
    gateway = await Gateway.start({
      hosts: ['127.0.0.1'],
      port: 0,
      logger: createLogger('silent'),
      tokenCheck: { controlPlaneUrl: cp.url, environment: 'env1' },
    })
    return gateway
  }

  it('serves the sign-in page, redeems the posted token for the _token cookie, and refuses a bad one', async () => {
    const cp = await controlPlane()
    const g = await start(cp)
    const page = await fetch(`http://127.0.0.1:${g.port}/aws_mwaa/aws-console-sso?login=true`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('action="/pluginsv2/aws_mwaa/login"')
    const login = await fetch(`http://127.0.0.1:${g.port}/pluginsv2/aws_mwaa/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=good-token',
      redirect: 'manual',
    })
    expect(login.status).toBe(302)
    expect(login.headers.get('location')).toBe('/')
    expect(login.headers.get('set-cookie')).toMatch(
      /^_token=airflow-jwt; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600$/,
    )
    const bad = await fetch(`http://127.0.0.1:${g.port}/pluginsv2/aws_mwaa/login`, {
      method: 'POST',
      body: 'token=<script>',
      redirect: 'manual',
    })
    expect(bad.status).toBe(403)
    expect(bad.headers.get('set-cookie')).toBeNull()
    expect(await bad.text()).toContain('already been used')
    expect(cp.calls.map((c) => c.url)).toEqual([
      '/airdock/v1/web-login/env1',
      '/airdock/v1/web-login/env1',
    ])
  })

  it('passes CLI calls with their bearer token to the control plane and refuses password sign-in', async () => {
    const cp = await controlPlane()
    const g = await start(cp)
    const a = await upstream('a')
    g.setUpstreams([{ host: '127.0.0.1', port: a.port }])
    const res = await fetch(`http://127.0.0.1:${g.port}/aws_mwaa/cli`, {
      method: 'POST',
      headers: { authorization: 'Bearer cli-token', 'content-type': 'text/plain' },
      body: 'dags list',
    })
    expect(await res.json()).toEqual({ stdout: 'b3V0', stderr: '' })
    expect(cp.calls).toEqual([
      { url: '/airdock/v1/cli/env1', body: 'dags list', auth: 'Bearer cli-token' },
    ])
    for (const path of ['/auth/token', '/auth/token/cli', '/auth/token/login']) {
      const refused = await fetch(`http://127.0.0.1:${g.port}${path}`, {
        method: path.endsWith('login') ? 'GET' : 'POST',
        body: path.endsWith('login') ? undefined : '{}',
      })
      expect(refused.status).toBe(403)
    }
    expect((await fetch(`http://127.0.0.1:${g.port}/auth/login`)).status).toBe(401)
    // Everything else still reaches Airflow.
    expect(
      (await fetch(`http://127.0.0.1:${g.port}/api/v2/version`)).headers.get('x-upstream'),
    ).toBe('a')
  })

  it('listens where WebserverAccessMode says', () => {
    expect(gatewayListenAddresses('PRIVATE_ONLY', '127.0.0.1', '10.0.0.1')).toEqual(['127.0.0.1'])
    expect(gatewayListenAddresses('PUBLIC_ONLY', '127.0.0.1', '10.0.0.1')).toEqual([
      '127.0.0.1',
      '10.0.0.1',
    ])
    expect(gatewayListenAddresses('PRIVATE_ONLY', '10.1.0.1', '10.0.0.1')).toEqual([
      '127.0.0.1',
      '10.1.0.1',
    ])
    expect(gatewayListenAddresses('PUBLIC_ONLY', '127.0.0.1', '0.0.0.0')).toEqual(['0.0.0.0'])
    expect(gatewayListenAddresses('PRIVATE_ONLY', '127.0.0.1', '0.0.0.0')).toEqual(['127.0.0.1'])
  })
})

describe('Gateway request targets', () => {
  it('refuses the password routes however the path is spelled, and absolute-form targets', async () => {
    const g = await Gateway.start({ hosts: ['127.0.0.1'], port: 0, logger: createLogger('silent') })
    gateway = g
    const a = await upstream('a')
    g.setUpstreams([{ host: '127.0.0.1', port: a.port }])
    const raw = (target: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: g.port, method: 'POST', path: target },
          (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          },
        )
        req.on('error', reject)
        req.end('{}')
      })
    for (const target of [
      '/auth/%74oken',
      '/x/../auth/token',
      '/auth/./token/cli',
      '/auth//token',
    ]) {
      expect(await raw(target), target).toBe(403)
    }
    expect(await raw('http://evil/auth/token')).toBe(400)
    expect(await raw('/api/v2/%ZZ')).toBe(400)
    expect(await raw('/api/v2/dags')).toBe(200)
  })
})
