/**
 * The control plane's HTTP listener, bound before anything else starts: a port that cannot be
 * had is a one-line error with nothing left running (no PostgreSQL started, no pid file kept).
 * Until the application is attached (`serve`), requests answer 503 `ServiceUnavailableException`
 * ("starting").
 *
 * Port rule: `AIRDOCK_PORT` set → exactly that port ({@link PortInUseError} when busy); unset →
 * the port recorded in `installation.json` at the first start (8780, or the next free one when
 * 8780 was taken), so two installations with default settings run side by side.
 */
import { createServer, type Server } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { endpointFor, type Settings } from '../config/settings.js'
import {
  PortInUseError,
  readInstallationState,
  recordInstallationState,
} from '../platform/installation.js'

/** Largest request header section accepted, in bytes (larger → 431 from Node's HTTP server). */
const MAX_HEADER_BYTES = 16 * 1024

/** How many ports above the recorded/default one are tried when it is taken (setting unset). */
const PORT_SEARCH_LIMIT = 100

/** An application's fetch (Hono's `app.fetch`): the request and the Node.js bindings. */
export type AppFetch = (request: Request, bindings: unknown) => Response | Promise<Response>

/** A bound listener. */
export interface ApiListener {
  server: Server
  /** The port it listens on. */
  port: number
  /** `http://<host>:<port>` (127.0.0.1 for a wildcard host). */
  endpoint: string
  /** Attaches the application: from now on every request goes to `fetch`. */
  serve(fetch: AppFetch): void
  /** Stops listening and closes idle connections. */
  close(): Promise<void>
}

/** The answer while the control plane is still starting. */
function startingResponse(): Response {
  return new Response(
    JSON.stringify({ message: 'airdock is starting; try again in a few seconds' }),
    {
      status: 503,
      headers: {
        'content-type': 'application/json',
        'x-amzn-ErrorType': 'ServiceUnavailableException',
        'retry-after': '2',
      },
    },
  )
}

/** Listens on `host`:`port`; resolves false on EADDRINUSE. */
function tryListen(server: Server, host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE') resolve(false)
      else reject(err)
    }
    const onListening = () => {
      server.off('error', onError)
      resolve(true)
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

/**
 * Binds the MWAA API's port (see the module comment for the rule) and records it.
 * @throws PortInUseError naming the port and `AIRDOCK_PORT` when it cannot be had
 * @throws Error for other listen errors (e.g. EACCES, an address not on this host)
 */
export async function listenForApi(settings: Settings): Promise<ApiListener> {
  let fetch: AppFetch | undefined
  const server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES },
    // The bindings ({ incoming, outgoing }) go on to the app: getConnInfo (the audit trail's
    // source address) reads the socket from them.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- node:http ignores the handler's promise; getRequestListener handles its errors
    getRequestListener((request, bindings) =>
      fetch ? fetch(request, bindings) : startingResponse(),
    ),
  )
  const recorded = settings.portIsExplicit
    ? undefined
    : (await readInstallationState(settings.dataDir)).apiPort
  const first = recorded ?? settings.port
  const last = settings.portIsExplicit ? first : Math.min(first + PORT_SEARCH_LIMIT, 65_535)
  let port: number | undefined
  for (let candidate = first; candidate <= last; candidate++) {
    if (await tryListen(server, settings.host, candidate)) {
      port = candidate
      break
    }
  }
  if (port === undefined) throw new PortInUseError(first, 'AIRDOCK_PORT')
  if (!settings.portIsExplicit && port !== recorded) {
    await recordInstallationState(settings.dataDir, { apiPort: port })
  }
  return {
    server,
    port,
    endpoint: endpointFor(settings.host, port),
    serve(f) {
      fetch = f
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      }),
  }
}
