/**
 * Scheduling priority of local processes ({@link ComponentSpec.niceness}).
 *
 * Two Linux mechanisms decide how CPU time is shared, and a component's niceness has to reach
 * both:
 * - the process nice value (`setpriority(2)`), inherited by every child at fork. The driver
 *   starts the command through `nice -n N -- command args…` (coreutils; `nice` execs the
 *   command, so the pid and its `/proc` start time stay those of the component), so the value
 *   is in place before the command's first instruction and every process it forks later —
 *   Celery's prefork pool, the LocalExecutor's workers, Airflow's task subprocesses — inherits
 *   it. `os.setPriority` after the spawn would leave out children forked before the call.
 * - the autogroup (`sched(7)`, "The autogroup feature"): with `kernel.sched_autogroup_enabled`
 *   (the default of most distributions) and no cpu cgroup of its own, the kernel first shares
 *   CPU time equally between *sessions*, and the process nice value only shares a session's
 *   slice between its own processes. Each component is spawned detached (a session of its own),
 *   so the driver also writes the nice value to `/proc/<pid>/autogroup`, which applies to the
 *   whole session, including processes it already forked.
 */
import { accessSync, constants, existsSync, writeFileSync } from 'node:fs'
import type { ComponentSpec } from '../driver.js'

/** Where coreutils' `nice` lives on Debian, Ubuntu, Fedora and Alpine (busybox). */
const niceCandidates = ['/usr/bin/nice', '/bin/nice']

let niceExecutable: string | null | undefined

/** The `nice` executable, or `null` when the machine has none (looked up once). */
function findNice(): string | null {
  niceExecutable ??= niceCandidates.find((file) => existsSync(file)) ?? null
  return niceExecutable
}

/** The executable and arguments that run `spec` (its own when it asks for no niceness). */
export interface PrioritizedCommand {
  command: string
  args: string[]
  /**
   * The niceness still to be applied with `os.setPriority` right after the spawn, when there
   * is no `nice` executable (children forked before that call keep priority 0); 0 otherwise.
   */
  setAfterSpawn: number
}

/**
 * The command line that starts `spec` at its niceness.
 * @throws the `accessSync` error (ENOENT, EACCES) when a niced spec's command is not an
 *   executable file, so it is reported as a failed spawn, as it is without niceness (through
 *   `nice` it would instead be a process that exits 127 or 126)
 */
export function prioritizedCommand(spec: ComponentSpec): PrioritizedCommand {
  const niceness = spec.niceness ?? 0
  if (niceness === 0) return { command: spec.command, args: spec.args, setAfterSpawn: 0 }
  accessSync(spec.command, constants.X_OK)
  const nice = findNice()
  if (nice === null) return { command: spec.command, args: spec.args, setAfterSpawn: niceness }
  return {
    command: nice,
    args: ['-n', String(niceness), '--', spec.command, ...spec.args],
    setAfterSpawn: 0,
  }
}

/** What {@link setAutogroupNiceness} did. */
export type AutogroupResult =
  /** Set (or nothing to do: niceness 0 on a session that starts at 0). */
  | 'set'
  /** The kernel has no autogroups (`/proc/<pid>/autogroup` missing): nothing to do. */
  | 'unsupported'
  /** Rate-limited (EAGAIN: without CAP_SYS_ADMIN, one write per 100 ms machine-wide); retry. */
  | 'retry'
  /** The process is gone. */
  | 'gone'

/**
 * Gives the autogroup (session) of `pid` the nice value `niceness`. The kernel answers EAGAIN
 * to a caller without CAP_SYS_ADMIN that writes less than 100 ms after the previous write
 * (kernel/sched/autogroup.c, `proc_sched_autogroup_set_nice`).
 * @param pid - a session leader the caller may change (its own user's, or any when root)
 * @param niceness - 0..19
 * @throws other write errors (EPERM, EACCES), for the caller to log
 */
export function setAutogroupNiceness(pid: number, niceness: number): AutogroupResult {
  const file = `/proc/${pid}/autogroup`
  try {
    writeFileSync(file, String(niceness))
    return 'set'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EAGAIN') return 'retry'
    if (code === 'ESRCH') return 'gone'
    if (code === 'ENOENT') return existsSync(`/proc/${pid}`) ? 'unsupported' : 'gone'
    throw err
  }
}
