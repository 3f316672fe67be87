/**
 * Every process one installation (one `$AIRDOCK_DATA_DIR`) runs, found from what it recorded —
 * the control plane's pid file and the driver's pid files `run/<group>/<name>.json` — never by
 * process name: Airflow retitles its processes (`airflow api_server -- …`, `[celeryd: …]`), and
 * another user's or installation's processes look the same.
 *
 * For each: pid, component, environment (from `environments/<id>/environment.json`), the TCP
 * ports its process group listens on (`/proc/net/tcp{,6}` matched to the group's socket fds)
 * and its memory (resident set size summed over the process group, `/proc/<pid>/status`).
 * Reads no database and needs no running control plane.
 */
import { readdir, readFile, readlink } from 'node:fs/promises'
import path from 'node:path'
import { environmentLayout } from '../airflow/components.js'
import { PLATFORM_GROUP } from '../platform/postgres-server.js'
import { runningControlPlane, type ControlPlaneProcess } from '../platform/control-plane-pid.js'
import type { PidFileRecord } from '../runtime/local/local-driver.js'
import { isProcessAlive, listProcessGroupMembers } from '../runtime/local/proc.js'

/** One component process of the installation. */
export interface InstallationProcess {
  /** Environment name; `platform` for PostgreSQL; the group id when the name is unknown. */
  environment: string
  /** Driver group (the environment id, or `platform`). */
  group: string
  /** Component name within its group, e.g. `api-server-1`. */
  name: string
  /** Component kind, e.g. `api-server`. */
  component: string
  /** Main pid (= process group id) when it is alive. */
  pid?: number
  /** TCP ports the process group listens on, ascending. */
  ports: number[]
  /** Resident memory of the process group, in bytes. */
  rssBytes: number
}

/** The installation's processes. */
export interface InstallationProcesses {
  /** The control plane, when one runs for the data dir. */
  controlPlane?: ControlPlaneProcess & { ports: number[]; rssBytes: number }
  components: InstallationProcess[]
}

/** Listening TCP sockets of the machine: socket inode → port (`/proc/net/tcp`, `tcp6`). */
async function listeningSockets(): Promise<Map<string, number>> {
  const sockets = new Map<string, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/)
      if (fields.length < 10 || fields[3] !== '0A') continue // 0A = LISTEN
      const port = parseInt(fields[1]!.split(':')[1]!, 16)
      sockets.set(fields[9]!, port)
    }
  }
  return sockets
}

/** Ports that `pids` listen on. */
async function portsOf(pids: number[], sockets: Map<string, number>): Promise<number[]> {
  const ports = new Set<number>()
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
      const port = inode ? sockets.get(inode) : undefined
      if (port !== undefined) ports.add(port)
    }
  }
  return [...ports].sort((a, b) => a - b)
}

/** Resident set size of `pids`, in bytes (`VmRSS`). */
async function rssOf(pids: number[]): Promise<number> {
  let total = 0
  for (const pid of pids) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
    if (kib) total += Number(kib) * 1024
  }
  return total
}

/** The name an environment folder records, or undefined. */
async function environmentName(dataDir: string, group: string): Promise<string | undefined> {
  const file = environmentLayout(path.join(dataDir, 'environments'), group).identityFile
  try {
    return (JSON.parse(await readFile(file, 'utf8')) as { name?: string }).name
  } catch {
    // An environment created before the identity file existed, or being deleted.
    return undefined
  }
}

/**
 * Lists the installation's processes (see the module comment), PostgreSQL first, then by
 * environment and component name. Components whose process is gone are listed without pid.
 */
export async function listInstallationProcesses(dataDir: string): Promise<InstallationProcesses> {
  const sockets = await listeningSockets()
  const runDir = path.join(dataDir, 'run')
  const components: InstallationProcess[] = []
  const groups = await readdir(runDir).catch(() => [] as string[])
  for (const group of groups) {
    const files = await readdir(path.join(runDir, group)).catch(() => [] as string[])
    const environment =
      group === PLATFORM_GROUP ? PLATFORM_GROUP : ((await environmentName(dataDir, group)) ?? group)
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      let record: PidFileRecord
      try {
        record = JSON.parse(await readFile(path.join(runDir, group, file), 'utf8')) as PidFileRecord
      } catch {
        continue // being rewritten right now
      }
      const alive =
        record.pid !== null &&
        record.startTimeTicks !== null &&
        (await isProcessAlive(record.pid, record.startTimeTicks))
      const members = alive ? await listProcessGroupMembers(record.pid!) : []
      components.push({
        environment,
        group,
        name: file.slice(0, -'.json'.length),
        component: record.component,
        ...(alive ? { pid: record.pid! } : {}),
        ports: await portsOf(members, sockets),
        rssBytes: await rssOf(members),
      })
    }
  }
  components.sort(
    (a, b) =>
      Number(b.group === PLATFORM_GROUP) - Number(a.group === PLATFORM_GROUP) ||
      a.environment.localeCompare(b.environment) ||
      a.name.localeCompare(b.name, undefined, { numeric: true }),
  )
  const running = await runningControlPlane(dataDir)
  return {
    ...(running
      ? {
          controlPlane: {
            ...running,
            ports: await portsOf([running.pid], sockets),
            rssBytes: await rssOf([running.pid]),
          },
        }
      : {}),
    components,
  }
}
