/**
 * A tiny HTTP proxy for tests that drive airdock with clients that cannot sign requests (a
 * fuzzer, curl): every request is forwarded to a target base URL after being signed with AWS
 * Signature Version 4 (service `airflow`), as an AWS SDK would sign it. Responses are passed back
 * unchanged and counted by status class.
 *
 * What is forwarded is what an SDK would send: the path normalised as a URL parser sees it, the
 * query string re-encoded the way SigV4 canonicalises it (RFC 3986, keys and values as the
 * client meant them), the body byte for byte, and the client's headers except `Authorization`,
 * `X-Amz-*`, `Host` and hop-by-hop headers, which the proxy sets itself. Signed headers, as the
 * AWS SDK for JavaScript signs them: `host`, `x-amz-date`, `x-amz-content-sha256` (the body's
 * SHA-256) and, when present, `content-type`.
 *
 * Besides the counts, the proxy remembers the requests that may have changed something (any
 * method but GET and HEAD) and were answered 2xx, so a test can tell changes that were asked
 * for from changes made by rejected requests.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { signRequest, type Credentials } from '../../src/iam/signed-fetch.js'

export { readCredentialsFile, type Credentials } from '../../src/iam/signed-fetch.js'

/** What {@link startSigningProxy} needs. */
export interface SigningProxyOptions {
  /** Base URL requests are forwarded to, e.g. `http://127.0.0.1:8780` (http only). */
  target: string
  /** Signing region, e.g. `us-east-1`. */
  region: string
  credentials: Credentials
}

/** Responses seen so far, by status. */
export interface SigningProxyCounts {
  /** Requests answered (by the target, or with 502 by the proxy when the target failed). */
  requests: number
  status2xx: number
  status4xx: number
  /** 5xx from the target, plus the proxy's own 502s (target unreachable, connection reset). */
  status5xx: number
  /** Count per HTTP status, e.g. `{ '400': 812, '404': 95 }`. */
  byStatus: Record<string, number>
}

/** A request that may have changed something (any method but GET and HEAD) and was answered 2xx. */
export interface AcceptedRequest {
  method: string
  /** Path and query as forwarded. */
  path: string
  status: number
  /** The response body as text (at most 64 KiB). */
  body: string
}

/** A running proxy. */
export interface SigningProxy {
  /** `http://127.0.0.1:<port>`: send requests here instead of the target. */
  url: string
  /** A copy of the counts so far. */
  counts(): SigningProxyCounts
  /** Every request other than GET and HEAD that the target answered with 2xx, in order. */
  accepted(): AcceptedRequest[]
  /** Stops listening and closes every connection; idempotent. */
  stop(): Promise<void>
}

/** Headers the proxy never forwards from the client (it sets its own, or they are per hop). */
const DROPPED_HEADERS = new Set([
  'authorization',
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
])

/** RFC 3986 encoding, as SigV4 canonicalises query keys and values. */
function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** The client's headers that are forwarded unsigned (see {@link DROPPED_HEADERS}). */
function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name) || name.startsWith('x-amz-')) continue
    out[name] = value
  }
  return out
}

/**
 * Starts the proxy on a free 127.0.0.1 port.
 * @example
 * const proxy = await startSigningProxy({ target: cp.endpoint, region: 'us-east-1', credentials })
 * await fetch(`${proxy.url}/environments`) // signed, forwarded, counted
 */
export async function startSigningProxy(options: SigningProxyOptions): Promise<SigningProxy> {
  const target = new URL(options.target)
  if (target.protocol !== 'http:') throw new Error(`unsupported target ${options.target}`)
  const counts: SigningProxyCounts = {
    requests: 0,
    status2xx: 0,
    status4xx: 0,
    status5xx: 0,
    byStatus: {},
  }
  const accepted: AcceptedRequest[] = []
  const count = (status: number): void => {
    counts.requests += 1
    if (status >= 200 && status < 300) counts.status2xx += 1
    else if (status >= 400 && status < 500) counts.status4xx += 1
    else if (status >= 500) counts.status5xx += 1
    counts.byStatus[String(status)] = (counts.byStatus[String(status)] ?? 0) + 1
  }

  const forward = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req)
    // A URL parser's view of the path (dot segments resolved, unsafe characters escaped): what
    // the target sees, and so what it verifies the signature against.
    const url = new URL(req.url ?? '/', 'http://proxy.invalid')
    const queryString = [...url.searchParams]
      .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
      .join('&')
    const method = req.method ?? 'GET'
    const forwardedPath = url.pathname + (queryString === '' ? '' : `?${queryString}`)
    const contentType = req.headers['content-type']
    const signedHeaders = await signRequest(
      `${target.origin}${forwardedPath}`,
      {
        method,
        headers: contentType === undefined ? {} : { 'content-type': contentType },
        body,
      },
      { region: options.region, credentials: options.credentials },
    )
    const headers: OutgoingHttpHeaders = { ...forwardedHeaders(req.headers), ...signedHeaders }
    if (body.length > 0 || !['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(method)) {
      headers['content-length'] = String(body.length)
    }
    let answered = false
    await new Promise<void>((resolve) => {
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: Number(target.port || 80),
          method,
          path: forwardedPath,
          headers,
        },
        (response) => {
          answered = true
          const status = response.statusCode ?? 502
          count(status)
          if (status >= 200 && status < 300 && method !== 'GET' && method !== 'HEAD') {
            const chunks: Buffer[] = []
            let size = 0
            response.on('data', (chunk: Buffer) => {
              if (size < 65_536) chunks.push(chunk)
              size += chunk.length
            })
            response.on('end', () => {
              const body = Buffer.concat(chunks).subarray(0, 65_536).toString('utf8')
              accepted.push({ method, path: forwardedPath, status, body })
            })
          }
          res.writeHead(status, response.statusMessage, response.headers)
          response.pipe(res)
          response.on('end', resolve)
          response.on('error', () => {
            res.destroy()
            resolve()
          })
        },
      )
      upstream.on('error', (err) => {
        if (!answered) count(502)
        if (!res.headersSent) {
          res.writeHead(502, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ message: `signing proxy: ${err.message}` }))
        } else {
          res.destroy()
        }
        resolve()
      })
      upstream.end(body)
    })
  }

  // The proxy accepts far longer request lines and headers than the target (Node's default is
  // 16 KiB), so that the target, not the proxy, decides what is too large.
  const server = createServer({ maxHeaderSize: 1024 * 1024 }, (req, res) => {
    forward(req, res).catch((err: unknown) => {
      count(502)
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ message: `signing proxy: ${String(err)}` }))
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as AddressInfo
  let stopped: Promise<void> | undefined
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts, byStatus: { ...counts.byStatus } }),
    accepted: () => accepted.map((a) => ({ ...a })),
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return stopped
    },
  }
}
