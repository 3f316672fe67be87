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
}

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
  if (state === undefined || startTimeTicks === undefined || !/^\d+$/.test(startTimeTicks)) {
    return undefined
  }
  if (!Number.isInteger(ppid) || !Number.isInteger(pgrp)) return undefined
  return { state, ppid, pgrp, startTimeTicks }
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
  const entries = await readdir('/proc')
  const pids = entries.filter((entry) => /^\d+$/.test(entry)).map(Number)
  const stats = await Promise.all(
    pids.map(async (pid) => ({ pid, stat: await readProcessStat(pid) })),
  )
  return stats
    .filter(({ stat }) => stat !== undefined && stat.pgrp === pgid && !isEndedState(stat.state))
    .map(({ pid }) => pid)
    .sort((a, b) => a - b)
}
