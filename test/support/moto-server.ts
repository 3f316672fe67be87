/**
 * Starts a real moto server (`.tools/venv/bin/moto_server`, an S3-compatible HTTP server among
 * others) on a free 127.0.0.1 port for integration tests.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

/** A running moto server. */
export interface MotoServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`; any access key / secret is accepted. */
  endpoint: string
  /** Stops the server (SIGTERM, SIGKILL after 5 s) and waits until it has exited; idempotent. */
  stop(): Promise<void>
}

/** Path of the moto_server script in the repository's tools venv. */
export const motoServerPath = fileURLToPath(
  new URL('../../.tools/venv/bin/moto_server', import.meta.url),
)

/** Error raised when moto cannot be started. */
export class MotoServerStartError extends Error {}

/**
 * Spawns `moto_server -H 127.0.0.1 -p <free port>` in its own process group and resolves once it
 * answers HTTP. The process (group) is also killed when the Node process exits, so a crashed test
 * run leaves nothing behind.
 * @param startTimeoutMs - how long to wait for the first HTTP answer (default 30 000 ms)
 * @throws MotoServerStartError - moto_server is missing, exits early, or never answers
 */
export async function startMotoServer(startTimeoutMs = 30_000): Promise<MotoServer> {
  if (!existsSync(motoServerPath)) {
    throw new MotoServerStartError(`moto_server not found at ${motoServerPath} (run make setup)`)
  }
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const child = spawn(motoServerPath, ['-H', '127.0.0.1', '-p', String(port)], {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000)
  })
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
  let hasExited = false
  void exited.then(() => {
    hasExited = true
  })
  const killGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined || hasExited) return
    try {
      process.kill(-child.pid, signal)
    } catch {
      // The group is already gone.
    }
  }
  const onExit = (): void => killGroup('SIGKILL')
  process.once('exit', onExit)

  const stop = async (): Promise<void> => {
    process.removeListener('exit', onExit)
    if (hasExited) return
    killGroup('SIGTERM')
    const timer = setTimeout(() => killGroup('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
    // moto may leave helper processes in its group; SIGKILL whatever remains of it.
    try {
      process.kill(-(child.pid ?? 0), 'SIGKILL')
    } catch {
      // Nothing left in the group.
    }
  }

  const deadline = Date.now() + startTimeoutMs
  for (;;) {
    if (hasExited) {
      await stop()
      throw new MotoServerStartError(`moto_server exited early: ${stderr.trim()}`)
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) })
      await response.arrayBuffer()
      break
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop()
      throw new MotoServerStartError(
        `moto_server did not answer within ${startTimeoutMs} ms: ${stderr.trim()}`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { endpoint, stop }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new MotoServerStartError('could not find a free port'))
      })
    })
  })
}
