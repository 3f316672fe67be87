/**
 * `airdock stop`, `airdock stop --all` and the installation-wide `airdock status` (no NAME):
 * the commands an operator stops and inspects one installation with. Every process is found by
 * its recorded pid (pid files of this data dir), never by name, so another user's or another
 * installation's control plane and environments are never touched.
 */
import path from 'node:path'
import type { Command } from 'commander'
import { loadSettings } from '../config/settings.js'
import { createLogger } from '../observability/logger.js'
import { runningControlPlane, type ControlPlaneProcess } from '../platform/control-plane-pid.js'
import { PLATFORM_GROUP } from '../platform/postgres-server.js'
import { FORCED_STOP_GRACE_MS } from '../reconciler/environment-reconciler.js'
import { LocalDriver } from '../runtime/local/local-driver.js'
import { isProcessAlive } from '../runtime/local/proc.js'
import { SecretBox } from '../security/secret-box.js'
import { listInstallationProcesses } from './installation-processes.js'

/** How long `airdock stop` waits for the control plane to exit after SIGTERM, in ms. */
const CONTROL_PLANE_STOP_TIMEOUT_MS = 60_000

/**
 * Stops the control plane of `dataDir` (SIGTERM to its recorded pid) and waits until it exited.
 * Environments keep running (unless it runs with `AIRDOCK_STOP_ON_EXIT=true`).
 * @returns the process that was stopped, or undefined when none ran
 * @throws Error when it is still alive after {@link CONTROL_PLANE_STOP_TIMEOUT_MS}
 */
export async function stopControlPlane(
  dataDir: string,
  timeoutMs = CONTROL_PLANE_STOP_TIMEOUT_MS,
): Promise<ControlPlaneProcess | undefined> {
  const running = await runningControlPlane(dataDir)
  if (!running) return undefined
  process.kill(running.pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  while (await isProcessAlive(running.pid, running.startTimeTicks)) {
    if (Date.now() > deadline) {
      throw new Error(
        `the control plane (pid ${running.pid}) did not stop within ${timeoutMs / 1000} s`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return running
}

/**
 * Stops every process the installation of `dataDir` started: each environment's components
 * (draining workers get {@link FORCED_STOP_GRACE_MS}, as on DeleteEnvironment), then PostgreSQL.
 * Call it with the control plane stopped (it would start them again).
 * @returns how many groups were stopped
 */
export async function stopAllComponents(dataDir: string): Promise<number> {
  const secretBox = await SecretBox.openOrCreate(path.join(dataDir, 'master.key'))
  const driver = await LocalDriver.open({
    runDir: path.join(dataDir, 'run'),
    logger: createLogger('warn'),
    restartExited: false,
    specCodec: secretBox.stringCodec(),
  })
  const groups = driver.groups()
  for (const group of groups.filter((g) => g !== PLATFORM_GROUP)) {
    await driver.stopGroup(group, { maxStopGracePeriodMs: FORCED_STOP_GRACE_MS })
  }
  if (groups.includes(PLATFORM_GROUP)) await driver.stopGroup(PLATFORM_GROUP)
  await driver.close({ stopProcesses: false })
  return groups.length
}

/** `12.3 MiB`. */
function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

/** Prints every process of the installation of `dataDir` (pid, component, environment, ports, memory). */
export async function printInstallationStatus(dataDir: string, json: boolean): Promise<void> {
  const listing = await listInstallationProcesses(dataDir)
  if (json) {
    console.log(JSON.stringify(listing, null, 2))
    return
  }
  const cp = listing.controlPlane
  console.log(`installation: ${dataDir}`)
  console.log(
    cp
      ? `control plane: pid ${cp.pid}, ${cp.endpoint || 'starting'}, ports ${cp.ports.join(',') || '-'}, ${mebibytes(cp.rssBytes)}, since ${cp.startedAt}`
      : 'control plane: not running (start it with `npm start`)',
  )
  const rows = listing.components.map((c) => [
    c.environment,
    c.name,
    c.component,
    c.pid === undefined ? 'gone' : String(c.pid),
    c.ports.join(',') || '-',
    mebibytes(c.rssBytes),
  ])
  if (rows.length === 0) {
    console.log('no environment or PostgreSQL process is recorded')
    return
  }
  const header = ['ENVIRONMENT', 'NAME', 'COMPONENT', 'PID', 'PORTS', 'MEMORY']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  for (const row of [header, ...rows]) {
    console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '))
  }
  const total = listing.components.reduce((sum, c) => sum + c.rssBytes, cp?.rssBytes ?? 0)
  console.log(`total memory: ${mebibytes(total)}`)
}

/** Adds `stop [--all]` to `program`. */
export function registerProcessCommands(program: Command): void {
  program
    .command('stop')
    .description(
      "stop this data dir's control plane (environments keep running and are adopted on the next start); --all also stops every environment and PostgreSQL",
    )
    .option('--all', 'also stop every environment and PostgreSQL of this installation')
    .action(async (options: { all?: boolean }) => {
      const { dataDir } = loadSettings()
      const stopped = await stopControlPlane(dataDir)
      console.log(
        stopped
          ? `stopped the control plane (pid ${stopped.pid}) of ${dataDir}`
          : `no control plane runs for ${dataDir}`,
      )
      if (options.all) {
        const groups = await stopAllComponents(dataDir)
        console.log(`stopped ${groups} group(s) of processes (environments and PostgreSQL)`)
      }
    })
}
