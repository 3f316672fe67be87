/**
 * The control plane's pid file, `$AIRDOCK_DATA_DIR/control-plane.pid`: JSON
 * `{ pid, startTimeTicks, endpoint, dataDir, startedAt }`. It makes one control plane per data
 * dir (a second start is refused while the first lives), lets `airdock stop` signal exactly
 * that process (never one found by name), and tells the CLI where the running API listens.
 *
 * A pid alone proves nothing (pids are reused): the pair (pid, start time from
 * `/proc/<pid>/stat`) identifies the process, as for every component (runtime/local/proc.ts).
 */
import { open, readFile, rm, writeFile, rename } from 'node:fs/promises'
import path from 'node:path'
import { isProcessAlive, readProcessStartTime } from '../runtime/local/proc.js'

/** What the pid file holds. */
export interface ControlPlaneProcess {
  pid: number
  /** Field 22 of `/proc/<pid>/stat` (clock ticks after boot). */
  startTimeTicks: string
  /** The MWAA endpoint it serves, e.g. `http://127.0.0.1:8780` (empty until it listens). */
  endpoint: string
  dataDir: string
  /** ISO 8601. */
  startedAt: string
}

/** Thrown when another live control plane already runs for the data dir. */
export class ControlPlaneRunningError extends Error {
  constructor(readonly running: ControlPlaneProcess) {
    super(
      `another airdock control plane (pid ${running.pid}${running.endpoint ? `, ${running.endpoint}` : ''}) already runs for ${running.dataDir}: stop it with \`airdock stop\` or use another AIRDOCK_DATA_DIR`,
    )
  }
}

/** Path of the pid file of `dataDir`. */
export function controlPlanePidFile(dataDir: string): string {
  return path.join(dataDir, 'control-plane.pid')
}

/**
 * The control plane recorded for `dataDir` when that process is still alive (same pid and
 * start time); undefined when none runs (no file, or a stale one).
 */
export async function runningControlPlane(
  dataDir: string,
): Promise<ControlPlaneProcess | undefined> {
  let recorded: ControlPlaneProcess
  try {
    recorded = JSON.parse(
      await readFile(controlPlanePidFile(dataDir), 'utf8'),
    ) as ControlPlaneProcess
  } catch {
    // No pid file, or one being written: nothing runs that we could prove.
    return undefined
  }
  if (typeof recorded.pid !== 'number' || typeof recorded.startTimeTicks !== 'string') {
    return undefined
  }
  return (await isProcessAlive(recorded.pid, recorded.startTimeTicks)) ? recorded : undefined
}

/** The pid file this process holds; `release` removes it (only while it is still ours). */
export interface ControlPlaneLock {
  /** Records the endpoint once the API listens. */
  setEndpoint(endpoint: string): Promise<void>
  release(): Promise<void>
}

/**
 * Claims `dataDir` for this process by creating its pid file exclusively (a stale file, whose
 * process is gone, is replaced).
 * @throws ControlPlaneRunningError when a live control plane holds it
 */
export async function acquireControlPlaneLock(dataDir: string): Promise<ControlPlaneLock> {
  const file = controlPlanePidFile(dataDir)
  const startTimeTicks = await readProcessStartTime(process.pid)
  if (!startTimeTicks) throw new Error(`cannot read /proc/${process.pid}/stat`)
  const own: ControlPlaneProcess = {
    pid: process.pid,
    startTimeTicks,
    endpoint: '',
    dataDir,
    startedAt: new Date().toISOString(),
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o644)
      await handle.writeFile(JSON.stringify(own) + '\n')
      await handle.close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 2) throw err
      const running = await runningControlPlane(dataDir)
      if (running) throw new ControlPlaneRunningError(running)
      // Stale: its process is gone (killed, or the machine restarted).
      await rm(file, { force: true })
    }
  }
  const isOurs = async () => (await runningControlPlane(dataDir))?.pid === process.pid
  return {
    async setEndpoint(endpoint) {
      own.endpoint = endpoint
      await writeFile(`${file}.tmp`, JSON.stringify(own) + '\n', { mode: 0o644 })
      await rename(`${file}.tmp`, file)
    },
    async release() {
      if (await isOurs()) await rm(file, { force: true })
    },
  }
}
