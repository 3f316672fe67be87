/**
 * TCP port probing: whether a port is free to listen on, and the first free one of a range.
 *
 * A port is probed by listening on it on the wildcard address `0.0.0.0` and closing again:
 * on Linux that fails with `EADDRINUSE` when any process listens on the port on any IPv4
 * address (or dual-stack `::`), so a free answer means every component can bind it on
 * 127.0.0.1 or on a public address. Sockets in TIME_WAIT do not make a port busy (Node
 * listens with `SO_REUSEADDR`, as Airflow's uvicorn, Redis and PostgreSQL do).
 */
import net from 'node:net'

/** Highest TCP port. */
export const MAX_PORT = 65_535

/**
 * Whether nothing listens on TCP `port` (any IPv4 address).
 * @param port - 1..65535
 * @returns false when listening fails with EADDRINUSE or EACCES (a privileged port)
 * @throws Error for any other listen error (e.g. an invalid port)
 */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false)
      else reject(err)
    })
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => {
      server.close(() => resolve(true))
    })
  })
}

/** Thrown when no free port is left in the searched range. */
export class NoFreePortError extends Error {}

/**
 * The first port at or above `from` that is free and not in `exclude`.
 * @param from - first port tried
 * @param options.exclude - ports never handed out (e.g. those other environments own)
 * @param options.limit - how many ports to try at most (default 1000)
 * @throws NoFreePortError when none of them is free
 */
export async function findFreePort(
  from: number,
  options: { exclude?: ReadonlySet<number>; limit?: number } = {},
): Promise<number> {
  const limit = options.limit ?? 1000
  for (let port = from; port <= MAX_PORT && port < from + limit; port++) {
    if (options.exclude?.has(port)) continue
    if (await isPortFree(port)) return port
  }
  throw new NoFreePortError(`no free TCP port in ${from}..${Math.min(from + limit - 1, MAX_PORT)}`)
}
