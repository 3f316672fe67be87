/**
 * The gateway (DESIGN.md decision 7): one HTTP listener per environment, on a loopback port of
 * the environment's own, in front of its api-server replicas — the role of MWAA's load
 * balancer. `WebserverUrl` points here.
 *
 * Balancing is round-robin over the upstreams the reconciler reports as running. A request
 * whose upstream refuses or drops the connection before answering is retried on the next
 * upstream, so killing one api-server does not fail requests the others can serve (request
 * bodies are buffered, up to `maxBufferedBodyBytes`, to make that retry possible).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../observability/logger.js'

/** One api-server the gateway may forward to. */
export interface Upstream {
  host: string
  port: number
}

/** Largest request body buffered for retry (larger ones are answered 413), in bytes. */
const DEFAULT_MAX_BUFFERED_BODY_BYTES = 16 * 1024 * 1024

/** Hop-by-hop headers never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

function isRetryable(err: NodeJS.ErrnoException): boolean {
  return ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(
    err.code ?? '',
  )
}

/** A running gateway for one environment. */
export class Gateway {
  private upstreams: Upstream[] = []
  private next = 0
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

  private constructor(
    private readonly server: http.Server,
    private readonly log: Logger,
    private readonly maxBufferedBodyBytes: number,
  ) {}

  /**
   * Starts listening.
   * @param host - address to bind (loopback)
   * @param port - port to bind; 0 picks a free one
   * @throws the listen error (e.g. EADDRINUSE)
   */
  static async start(options: {
    host: string
    port: number
    logger: Logger
    maxBufferedBodyBytes?: number
  }): Promise<Gateway> {
    const server = http.createServer()
    const gateway = new Gateway(
      server,
      options.logger,
      options.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES,
    )
    server.on('request', (req, res) => gateway.handle(req, res))
    server.keepAliveTimeout = 5_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port, options.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    return gateway
  }

  /** The bound port. */
  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  /** Replaces the set of upstreams (called by the reconciler when api-servers change). */
  setUpstreams(upstreams: Upstream[]): void {
    this.upstreams = [...upstreams]
  }

  /** The current upstreams. */
  getUpstreams(): Upstream[] {
    return [...this.upstreams]
  }

  /** Stops listening and closes idle upstream connections. */
  async close(): Promise<void> {
    this.agent.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > this.maxBufferedBodyBytes) {
        tooLarge = true
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => {
      if (tooLarge) {
        res.writeHead(413, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ detail: 'request body too large' }))
        return
      }
      this.forward(req, res, Buffer.concat(chunks), 0)
    })
    req.on('error', () => res.destroy())
  }

  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    attempt: number,
  ): void {
    const upstreams = this.upstreams
    if (upstreams.length === 0 || attempt >= Math.max(upstreams.length, 1) * 2) {
      if (!res.headersSent) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5' })
      }
      res.end(JSON.stringify({ detail: 'no Airflow web server is available' }))
      return
    }
    const upstream = upstreams[this.next++ % upstreams.length]!
    const headers: http.OutgoingHttpHeaders = {}
    for (const [key, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(key)) headers[key] = value
    }
    const remote = req.socket.remoteAddress ?? ''
    headers['x-forwarded-for'] = req.headers['x-forwarded-for']
      ? `${String(req.headers['x-forwarded-for'])}, ${remote}`
      : remote
    headers['x-forwarded-proto'] = 'http'
    headers['x-forwarded-host'] = req.headers.host ?? ''
    headers['content-length'] = String(body.length)
    const upstreamReq = http.request(
      {
        host: upstream.host,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (upstreamRes) => {
        const responseHeaders: http.OutgoingHttpHeaders = {}
        for (const [key, value] of Object.entries(upstreamRes.headers)) {
          if (!HOP_BY_HOP.has(key) && value !== undefined) responseHeaders[key] = value
        }
        res.writeHead(upstreamRes.statusCode ?? 502, responseHeaders)
        upstreamRes.pipe(res)
        upstreamRes.on('error', () => res.destroy())
      },
    )
    upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
      if (!res.headersSent && isRetryable(err)) {
        this.log.debug({ upstream, err: err.code }, 'upstream failed, retrying')
        this.forward(req, res, body, attempt + 1)
        return
      }
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ detail: 'Airflow web server did not answer' }))
      } else {
        res.destroy()
      }
    })
    upstreamReq.end(body)
  }
}
