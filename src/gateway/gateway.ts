/**
 * The gateway (DESIGN.md decision 7): one HTTP listener per environment, on a loopback port of
 * the environment's own, in front of its api-server replicas — the role of MWAA's load
 * balancer. `WebserverUrl` points here.
 *
 * Balancing is round-robin over the upstreams the reconciler reports as running. A request
 * whose upstream refuses or drops the connection before answering is retried on the next
 * upstream, so killing one api-server does not fail requests the others can serve (request
 * bodies are buffered, up to `maxBufferedBodyBytes`, to make that retry possible).
 *
 * It also serves MWAA's own web-server routes (reference §5), with the control plane checking
 * the tokens:
 *   GET  /aws_mwaa/aws-console-sso?login=true#<WebToken>  a page that posts the token (which
 *        browsers keep in the fragment) to the login route
 *   POST /pluginsv2/aws_mwaa/login (Airflow 3; also /aws_mwaa/login) form `token=<WebToken>` →
 *        the control plane redeems it once for an Airflow session token with the role the
 *        caller's policy allows → cookie `_token`, redirect to `/`
 *   POST /aws_mwaa/cli  `Authorization: Bearer <CliToken>`, text body → `{stdout, stderr}`
 * and closes Airflow's own password sign-in (`/auth/token*`, the `/auth/login` page): the only
 * way into the Airflow UI is a web login token.
 */
import http from 'node:http'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import type { WebserverAccessMode } from '../domain/environment.js'
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

/** Where the gateway asks the control plane to check web login and CLI tokens. */
export interface TokenCheck {
  /** The control plane's base URL, e.g. `http://127.0.0.1:8780`. */
  controlPlaneUrl: string
  /** The environment's name. */
  environment: string
}

/** Options of {@link Gateway.start}. */
export interface GatewayOptions {
  /** Addresses to listen on (all on the same port). */
  hosts: string[]
  /** Port; 0 picks a free one (with several hosts, the first host's port is reused). */
  port: number
  logger: Logger
  maxBufferedBodyBytes?: number
  /** Enables the MWAA login and CLI routes; without it they answer 404. */
  tokenCheck?: TokenCheck
}

/** The Airflow session cookie (Airflow 3's `COOKIE_NAME_JWT_TOKEN`). */
const SESSION_COOKIE = '_token'

/**
 * The addresses an environment's gateway listens on (WebserverAccessMode, reference §1.2):
 * always loopback (tasks reach the Execution API there) and the private address; PUBLIC_ONLY
 * (and PUBLIC_AND_PRIVATE) add the public address. A wildcard address (`0.0.0.0`, `::`) covers the others, so then it
 * is the only one.
 */
export function gatewayListenAddresses(
  accessMode: WebserverAccessMode,
  privateAddress: string,
  publicAddress: string,
): string[] {
  const isPublic = accessMode !== 'PRIVATE_ONLY'
  const wanted = ['127.0.0.1', privateAddress, ...(isPublic ? [publicAddress] : [])]
  const wildcard = wanted.find((a) => a === '0.0.0.0' || a === '::')
  return wildcard ? [wildcard] : [...new Set(wanted)]
}

/** A running gateway for one environment. */
export class Gateway {
  private upstreams: Upstream[] = []
  private next = 0
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

  private constructor(
    private readonly servers: http.Server[],
    private readonly log: Logger,
    private readonly maxBufferedBodyBytes: number,
    private readonly tokenCheck: TokenCheck | undefined,
  ) {}

  /**
   * Starts listening on every address of `options.hosts`.
   * @throws the listen error (e.g. EADDRINUSE, EADDRNOTAVAIL); nothing is left listening
   */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const servers: http.Server[] = []
    const gateway = new Gateway(
      servers,
      options.logger,
      options.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES,
      options.tokenCheck,
    )
    let port = options.port
    try {
      for (const host of options.hosts) {
        const server = http.createServer({ maxHeaderSize: 16 * 1024 })
        server.on('request', (req, res) => gateway.handle(req, res))
        server.keepAliveTimeout = 5_000
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(port, host, () => {
            server.off('error', reject)
            resolve()
          })
        })
        servers.push(server)
        port = (server.address() as AddressInfo).port
      }
    } catch (err) {
      await gateway.close()
      throw err
    }
    return gateway
  }

  /** The bound port. */
  get port(): number {
    return (this.servers[0]!.address() as AddressInfo).port
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
    await Promise.all(
      this.servers.map((server) => {
        server.closeAllConnections()
        return new Promise<void>((resolve) => server.close(() => resolve()))
      }),
    )
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
      const body = Buffer.concat(chunks)
      if (!this.serveOwnRoute(req, res, body)) this.forward(req, res, body, 0)
    })
    req.on('error', () => res.destroy())
  }

  /**
   * Serves the MWAA routes and refuses Airflow's password sign-in.
   * @returns true when the request was handled here
   */
  private serveOwnRoute(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
  ): boolean {
    const target = req.url ?? '/'
    // Only origin-form targets, judged by the path Airflow will route: percent-decoded and
    // normalised, so `/auth/%74oken` or `/x/../auth/token` cannot pass as something else.
    let pathname: string
    try {
      if (!target.startsWith('/')) throw new Error('not origin-form')
      pathname = path.posix.normalize(decodeURIComponent(target.split('?')[0]!))
    } catch {
      sendJson(res, 400, { detail: 'bad request target' })
      return true
    }
    if (pathname === '/auth/login' || pathname === '/auth/login/') {
      sendHtml(res, 401, SIGN_IN_PAGE)
      return true
    }
    if (pathname.startsWith('/auth/token')) {
      sendJson(res, 403, {
        detail:
          'Password sign-in is disabled; sign in with a web login token (CreateWebLoginToken).',
      })
      return true
    }
    if (!pathname.startsWith('/aws_mwaa/') && !pathname.startsWith('/pluginsv2/aws_mwaa/')) {
      return false
    }
    const check = this.tokenCheck
    if (pathname === '/aws_mwaa/aws-console-sso' && req.method === 'GET') {
      sendHtml(res, 200, CONSOLE_SSO_PAGE)
    } else if (
      check &&
      req.method === 'POST' &&
      (pathname === '/pluginsv2/aws_mwaa/login' || pathname === '/aws_mwaa/login')
    ) {
      void this.login(check, body, res)
    } else if (check && req.method === 'POST' && pathname === '/aws_mwaa/cli') {
      void this.cli(check, req, body, res)
    } else {
      sendJson(res, 404, { detail: 'Not Found' })
    }
    return true
  }

  /** Redeems a web login token for the Airflow session cookie. */
  private async login(check: TokenCheck, body: Buffer, res: http.ServerResponse): Promise<void> {
    const token = new URLSearchParams(body.toString('utf8')).get('token') ?? ''
    try {
      const answer = await fetch(
        `${check.controlPlaneUrl}/airdock/v1/web-login/${encodeURIComponent(check.environment)}`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ WebToken: token }),
          signal: AbortSignal.timeout(10_000),
        },
      )
      const json = (await answer.json()) as {
        AirflowToken?: string
        MaxAgeSeconds?: number
        Message?: string
        message?: string
      }
      if (!answer.ok || !json.AirflowToken) {
        sendHtml(res, 403, signInFailedPage(json.Message ?? json.message ?? 'sign-in refused'))
        return
      }
      res.writeHead(302, {
        location: '/',
        'set-cookie': `${SESSION_COOKIE}=${json.AirflowToken}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${json.MaxAgeSeconds ?? 43_200}`,
        'cache-control': 'no-store',
      })
      res.end()
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'web login: control plane unreachable')
      sendHtml(res, 503, signInFailedPage('the control plane could not be reached'))
    }
  }

  /** Runs a CLI command through the control plane, which checks the token and the command. */
  private async cli(
    check: TokenCheck,
    req: http.IncomingMessage,
    body: Buffer,
    res: http.ServerResponse,
  ): Promise<void> {
    try {
      const answer = await fetch(
        `${check.controlPlaneUrl}/airdock/v1/cli/${encodeURIComponent(check.environment)}`,
        {
          method: 'POST',
          headers: {
            'content-type': 'text/plain',
            authorization: String(req.headers.authorization ?? ''),
          },
          body,
          signal: AbortSignal.timeout(130_000),
        },
      )
      res.writeHead(answer.status, { 'content-type': 'application/json' })
      res.end(Buffer.from(await answer.arrayBuffer()))
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cli: control plane unreachable')
      sendJson(res, 503, { detail: 'the control plane could not be reached' })
    }
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

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function sendHtml(res: http.ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; form-action 'self'",
    'referrer-policy': 'no-referrer',
  })
  res.end(html)
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * MWAA's sign-in link keeps the token in the URL fragment, which browsers never send: this page
 * posts it to the login route and removes it from the address bar and history.
 */
const CONSOLE_SSO_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Signing in to Airflow…</title></head>
<body><p id="m">Signing in to Airflow…</p>
<form id="f" method="post" action="/pluginsv2/aws_mwaa/login"><input type="hidden" name="token" id="t"></form>
<script>
var token = decodeURIComponent(location.hash.slice(1));
history.replaceState(null, '', location.pathname);
if (token) { document.getElementById('t').value = token; document.getElementById('f').submit(); }
else { document.getElementById('m').textContent = 'This sign-in link has no token. Create one with: aws mwaa create-web-login-token --name ENVIRONMENT'; }
</script></body></html>
`

/** Shown instead of Airflow's password form (Airflow's UI sends expired sessions here). */
const SIGN_IN_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to Airflow</title></head>
<body><h1>Sign in to Airflow</h1>
<p>This Airflow is managed by airdock. Sign in with a web login link:</p>
<pre>aws mwaa create-web-login-token --name ENVIRONMENT --endpoint-url AIRDOCK_ENDPOINT</pre>
<p>then open <code>http://&lt;WebServerHostname&gt;/aws_mwaa/aws-console-sso?login=true#&lt;WebToken&gt;</code>.</p>
</body></html>
`

function signInFailedPage(reason: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Sign-in failed</title></head>
<body><h1>Sign-in failed</h1><p>${escapeHtml(reason)}</p>
<p>Web login tokens are valid for 60 seconds and only once; create a new one with <code>aws mwaa create-web-login-token</code>.</p>
</body></html>
`
}
