/**
 * The load signals the autoscaler reads, each from its source of truth:
 * - task backlog: the environment's metadata database (the Helm chart's KEDA query, reference
 *   `airflow3-runtime.md` §3.4);
 * - web server CPU: `/proc/<pid>/stat` of each api-server's process group;
 * - active connections: established TCP connections to the environment's gateway port in
 *   `/proc/net/tcp` (what MWAA's load balancer counts as `ActiveConnectionCount`).
 */
import { readFile } from 'node:fs/promises'
import type pg from 'pg'
import { CLOCK_TICKS_PER_SECOND, readProcessGroup } from '../runtime/local/proc.js'

/**
 * Queued + running task instances on `queue` (the queue the environment's Celery workers
 * consume), counting only those the Celery executor runs.
 * @throws the database error (never read as 0: a failed sample must not scale anything in)
 */
export async function queryTaskBacklog(pool: pg.Pool, queue: string): Promise<number> {
  const result = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM task_instance
     WHERE state IN ('queued', 'running') AND queue = $1
       AND (executor IS NULL OR executor = 'CeleryExecutor')`,
    [queue],
  )
  return result.rows[0]?.n ?? 0
}

/** TCP state code of an established connection in `/proc/net/tcp`. */
const TCP_ESTABLISHED = '01'

/**
 * Counts established TCP connections whose local port is `port` (connections accepted by the
 * listener on that port), over IPv4 and IPv6.
 * @param procNetFiles - the tables to read (tests pass fixtures)
 */
export async function countEstablishedConnections(
  port: number,
  procNetFiles: readonly string[] = ['/proc/net/tcp', '/proc/net/tcp6'],
): Promise<number> {
  let count = 0
  for (const file of procNetFiles) {
    const text = await readFile(file, 'utf8').catch(() => '')
    count += countInTcpTable(text, port)
  }
  return count
}

/**
 * Counts, in the text of a `/proc/net/tcp` table, established connections with local port `port`.
 * Lines look like `0: 0100007F:4650 0100007F:C350 01 …` (local address:port, remote, state; hex).
 */
export function countInTcpTable(text: string, port: number): number {
  let count = 0
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    const local = fields[1]
    if (local === undefined || fields[3] !== TCP_ESTABLISHED) continue
    const localPort = parseInt(local.slice(local.lastIndexOf(':') + 1), 16)
    if (localPort === port) count++
  }
  return count
}

/**
 * CPU utilisation of process groups between two samples, in percent of one core (a group
 * using two cores fully reads 200). Members that appear or vanish between samples are counted
 * from what they used while both samples saw them.
 */
export class CpuSampler {
  private readonly previous = new Map<number, { atMs: number; ticks: Map<number, number> }>()

  /**
   * Samples group `pgid`.
   * @returns percent of one core since the previous sample of this group, or undefined on the
   *   first sample
   */
  async sample(pgid: number, nowMs = Date.now()): Promise<number | undefined> {
    const members = await readProcessGroup(pgid)
    const ticks = new Map(members.map(({ pid, stat }) => [pid, stat.cpuTicks]))
    const before = this.previous.get(pgid)
    this.previous.set(pgid, { atMs: nowMs, ticks })
    if (before === undefined || nowMs <= before.atMs) return undefined
    let used = 0
    for (const [pid, now] of ticks) {
      const then = before.ticks.get(pid)
      if (then !== undefined && now >= then) used += now - then
    }
    const seconds = (nowMs - before.atMs) / 1000
    return (used / CLOCK_TICKS_PER_SECOND / seconds) * 100
  }

  /** Forgets every group not in `keep` (groups of stopped web servers). */
  retain(keep: ReadonlySet<number>): void {
    for (const pgid of this.previous.keys()) if (!keep.has(pgid)) this.previous.delete(pgid)
  }
}
