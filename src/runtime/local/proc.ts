/**
 * Small readers of Linux `/proc` used by the local driver to tell whether a pid is still the
 * process it started (pids are reused, so a pid alone proves nothing: the pair
 * `(pid, start time)` does) and to find the members of a process group.
 *
 * `/proc/<pid>/stat` is `pid (comm) state ppid pgrp session … starttime …`. `comm` is the
 * executable name chosen by the process and may contain spaces and parentheses, so fields are
 * counted from the text after the LAST `)`.
 */
import { readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'

/** The fields of `/proc/<pid>/stat` the driver uses. */
export interface ProcessStat {
  /** One-letter state: `R` running, `S` sleeping, `D` disk sleep, `Z` zombie, `X` dead, … */
  state: string
  /** Parent pid (field 4). */
  ppid: number
  /** Process group id (field 5). */
  pgrp: number
  /**
   * Start time after boot in clock ticks (field 22), kept as the decimal string the kernel
   * wrote so it can be compared exactly and stored in JSON.
   */
  startTimeTicks: string
  /** CPU time used so far, user + system (fields 14 and 15), in clock ticks (`CLOCK_TICKS_PER_SECOND`). */
  cpuTicks: number
}

/** Linux's `USER_HZ`: the unit of the tick counts in `/proc/<pid>/stat` (100 on every Linux ABI Node runs on). */
export const CLOCK_TICKS_PER_SECOND = 100

/**
 * Parses the text of `/proc/<pid>/stat`.
 *
 * @param text - the whole file, e.g. `42 (my (odd) name) S 1 42 42 0 -1 …`
 * @returns the fields, or `undefined` when the text is not a stat line
 */
export function parseProcessStat(text: string): ProcessStat | undefined {
  const close = text.lastIndexOf(')')
  if (close < 0) return undefined
  // After the comm: field 3 (state) is index 0 here, so field N is index N - 3.
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const state = fields[0]
  const ppid = Number(fields[1])
  const pgrp = Number(fields[2])
  const startTimeTicks = fields[22 - 3]
  const cpuTicks = Number(fields[14 - 3]) + Number(fields[15 - 3])
  if (state === undefined || startTimeTicks === undefined || !/^\d+$/.test(startTimeTicks)) {
    return undefined
  }
  if (!Number.isInteger(ppid) || !Number.isInteger(pgrp)) return undefined
  return { state, ppid, pgrp, startTimeTicks, cpuTicks: Number.isFinite(cpuTicks) ? cpuTicks : 0 }
}

/**
 * Reads `/proc/<pid>/stat`.
 *
 * @returns the parsed fields, or `undefined` when the process does not exist (or the file is
 *   unreadable or malformed)
 */
export async function readProcessStat(pid: number): Promise<ProcessStat | undefined> {
  try {
    return parseProcessStat(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    // ENOENT / ESRCH: the process is gone, which is an answer, not an error.
    return undefined
  }
}

/**
 * Synchronous {@link readProcessStat}, for the few places where the driver must record a
 * freshly spawned process without yielding to the event loop.
 */
export function readProcessStatSync(pid: number): ProcessStat | undefined {
  try {
    return parseProcessStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    // ENOENT / ESRCH: the process is gone, which is an answer, not an error.
    return undefined
  }
}

/**
 * Reads a process's start time (field 22 of `/proc/<pid>/stat`, clock ticks after boot).
 *
 * @returns the start time as a decimal string, or `undefined` when there is no such process
 */
export async function readProcessStartTime(pid: number): Promise<string | undefined> {
  return (await readProcessStat(pid))?.startTimeTicks
}

/** True when `state` means the process has ended (a zombie waiting to be reaped counts as ended). */
function isEndedState(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x'
}

/**
 * Tells whether `pid` is still the very process that was recorded with `startTimeTicks`.
 *
 * @returns false when the pid does not exist, is a zombie, or now belongs to another process
 *   (different start time)
 */
export async function isProcessAlive(pid: number, startTimeTicks: string): Promise<boolean> {
  const stat = await readProcessStat(pid)
  return stat !== undefined && stat.startTimeTicks === startTimeTicks && !isEndedState(stat.state)
}

/** Synchronous {@link isProcessAlive}. */
export function isProcessAliveSync(pid: number, startTimeTicks: string): boolean {
  const stat = readProcessStatSync(pid)
  return stat !== undefined && stat.startTimeTicks === startTimeTicks && !isEndedState(stat.state)
}

/**
 * Lists the live (non-zombie) processes whose process group is `pgid`, by scanning `/proc`.
 *
 * @returns pids in ascending order; empty when the group has no live member
 */
export async function listProcessGroupMembers(pgid: number): Promise<number[]> {
  return (await readProcessGroup(pgid)).map(({ pid }) => pid)
}

/**
 * The live (non-zombie) members of process group `pgid` with their stat fields, by scanning
 * `/proc`, in ascending pid order.
 */
export async function readProcessGroup(
  pgid: number,
): Promise<{ pid: number; stat: ProcessStat }[]> {
  const entries = await readdir('/proc')
  const pids = entries.filter((entry) => /^\d+$/.test(entry)).map(Number)
  const stats = await Promise.all(
    pids.map(async (pid) => ({ pid, stat: await readProcessStat(pid) })),
  )
  return stats
    .filter(
      (entry): entry is { pid: number; stat: ProcessStat } =>
        entry.stat !== undefined && entry.stat.pgrp === pgid && !isEndedState(entry.stat.state),
    )
    .sort((a, b) => a.pid - b.pid)
}
