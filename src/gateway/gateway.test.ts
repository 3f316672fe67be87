import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../observability/logger.js'
import { Gateway } from './gateway.js'

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
    host: '127.0.0.1',
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
