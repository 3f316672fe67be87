/**
 * The driver port: runs groups of components (OS processes, later pods) and reports on them.
 *
 * A driver knows nothing about Airflow. It receives the complete desired list of
 * {@link ComponentSpec}s of a group (an environment's id is used as the group id), makes the
 * running components match it, supervises them (restart with capped backoff, crash-loop
 * detection) and stops them gracefully (stop signal, then SIGKILL after a grace period).
 * Translating an environment into component specs is the job of `src/airflow/`.
 *
 * Every driver passes the shared suite in `driver-conformance.ts`.
 */
import { createHash } from 'node:crypto'

/** Signals a component may ask to be stopped with. */
export type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT'

/**
 * What to run for one component. The driver treats every field as opaque data: it never adds
 * to `env` and never runs a shell.
 */
export interface ComponentSpec {
  /** Unique within its group, `[a-z0-9-]+`, e.g. `scheduler-1`. */
  name: string
  /** Kind label for reporting, e.g. `scheduler`; the driver does not interpret it. */
  component: string
  /** Absolute path of the executable (no shell, ever). */
  command: string
  /** Arguments, passed as they are (no word splitting, no globbing). */
  args: string[]
  /** The COMPLETE environment of the process; the driver adds no variable. */
  env: Record<string, string>
  /** Working directory (absolute); must exist. */
  cwd: string
  /**
   * File that receives the process's stdout and stderr, opened for append (parent folders are
   * created). A file rather than a pipe, so the process survives a control-plane restart.
   */
  logFile: string
  /**
   * Signal sent to the main pid only when the component is stopped (a Celery worker needs it
   * alone for a warm shutdown; signalling its group would kill running tasks).
   * @default 'SIGTERM'
   */
  stopSignal?: StopSignal
  /** Time the process gets to exit after the stop signal before SIGKILL hits its whole process group. */
  stopGracePeriodMs: number
  /** Run as this user id (e.g. PostgreSQL as `postgres` when the control plane is root). */
  uid?: number
  /** Run with this group id. */
  gid?: number
  /**
   * Scheduling priority as a POSIX nice value (`nice(1)`, `setpriority(2)`): 0 (the default,
   * normal priority) to 19 (lowest). A batch component (one that runs user tasks or parses user
   * code) gets a high niceness so that, when CPUs are short, interactive components (web
   * servers, databases) keep answering. It is set before the command runs, so every process
   * the component forks inherits it. Under Linux's autogroup scheduler, which shares CPU time
   * between sessions first, the local driver (whose components are sessions of their own) also
   * gives the component's autogroup (`/proc/<pid>/autogroup`) this nice value; a descendant
   * that starts a session of its own keeps its process niceness only. Negative values (higher
   * than normal priority) are refused: they need `CAP_SYS_NICE`.
   * @default 0
   */
  niceness?: number
}

/**
 * Lifecycle phase of a component.
 * - `starting`: spawned, not yet alive long enough to count as up.
 * - `running`: up and supervised.
 * - `stopping`: stop signal sent, waiting for the process to exit.
 * - `exited`: the process ended unexpectedly; a restart is scheduled.
 * - `crash-looping`: it exited too often in a short window; still restarted with capped backoff,
 *   back to `running` once it stays up long enough.
 */
export type ComponentPhase = 'starting' | 'running' | 'stopping' | 'exited' | 'crash-looping'

/** Observed state of one component. */
export interface ComponentState {
  /** {@link ComponentSpec.name}. */
  name: string
  /** {@link ComponentSpec.component}. */
  component: string
  /** Current phase. */
  phase: ComponentPhase
  /** Main pid (also its process group id) while a process exists. */
  pid?: number
  /** How many times the driver restarted it after an unexpected exit (0 after a spec change). */
  restarts: number
  /** Exit code of the last exit; `null` when it was killed by a signal or the code is unknown. */
  lastExitCode?: number | null
  /** Signal that ended the last run, e.g. `SIGKILL`; `null` when it exited by itself or unknown. */
  lastExitSignal?: string | null
  /** When the current process was started. */
  startedAt?: Date
  /** {@link hashComponentSpec} of the spec it runs. */
  specHash: string
  /** Human-readable detail, e.g. why a spawn failed or why it is crash-looping. */
  message?: string
}

/** Payload of the `component:exited` event. */
export interface ComponentExitedEvent {
  /** Group the component belongs to. */
  groupId: string
  /** {@link ComponentSpec.name}. */
  name: string
  /** Exit code; `null` when killed by a signal or unknown (e.g. an adopted process). */
  code: number | null
  /** Signal name that ended it; `null` when it exited by itself or unknown. */
  signal: string | null
}

/** Options of {@link Driver.close}. */
export interface DriverCloseOptions {
  /**
   * `true`: stop every component of every group (as {@link Driver.stopGroup}).
   * `false`: stop supervising only; processes keep running and the next driver opened on the
   * same state adopts them.
   */
  stopProcesses: boolean
}

/** Options of {@link Driver.apply} and {@link Driver.stopGroup}. */
export interface StopOptions {
  /**
   * Caps the grace period (ms between the stop signal and SIGKILL) of every component the call
   * stops, including components already stopping; a component whose stop began earlier gets at
   * most this long from now. Used for FORCED worker replacement and for deleting an environment,
   * where a Celery worker's hours-long drain must not be waited for.
   */
  maxStopGracePeriodMs?: number
}

/** Runs and supervises groups of components. */
export interface Driver {
  /**
   * Makes the running components of one group match `desired`. Idempotent: missing components
   * are started, components whose {@link ComponentSpec} changed (by {@link hashComponentSpec})
   * are stopped then started again (the call waits for that stop, so such components should
   * have short grace periods), components not in `desired` are stopped **in the background**:
   * the call does not wait for them; they are observed as `stopping` until their process is
   * gone (which may take their whole grace period, e.g. a Celery worker draining its tasks), then
   * they vanish. A stop that has begun is never undone: a desired component whose name is still
   * stopping is started once the old process is gone (the call waits for that). A component is
   * signalled once per stop, also across a driver restart (a second SIGTERM would turn Celery's
   * warm shutdown into a cold one). Calls for the same group run one after another.
   *
   * @param groupId - stable id of the group, `[A-Za-z0-9][A-Za-z0-9._-]*`
   * @param desired - the complete desired set, not a delta
   * @param options - see {@link StopOptions}
   * @returns observed states right after the call (sorted by name); components may still be
   *   `starting`, removed ones `stopping`
   * @throws InvalidComponentSpecError when a spec or the group id breaks a rule (nothing is changed)
   * @throws DriverClosedError after {@link Driver.close}
   */
  apply(
    groupId: string,
    desired: readonly ComponentSpec[],
    options?: StopOptions,
  ): Promise<ComponentState[]>

  /**
   * Current states of a group's components, sorted by name.
   *
   * @returns an empty list for an unknown group
   */
  observe(groupId: string): ComponentState[]

  /**
   * Stops every component of the group (stop signal, then SIGKILL after each grace period,
   * capped by `options.maxStopGracePeriodMs`), waits for all of them (background stops
   * included) and forgets the group. A no-op for an unknown group.
   *
   * @throws DriverClosedError after {@link Driver.close}
   */
  stopGroup(groupId: string, options?: StopOptions): Promise<void>

  /**
   * A copy of the spec component `name` of the group runs now (so a caller can keep it as it is,
   * e.g. during a rolling restart), or undefined when there is no such component.
   */
  specOf(groupId: string, name: string): ComponentSpec | undefined

  /** Ids of the groups the driver knows (including ones adopted from a previous run). */
  groups(): string[]

  /**
   * Subscribes to unexpected exits of supervised components (intentional stops are not
   * reported). Listeners run synchronously; an exception thrown by one is logged and ignored.
   */
  on(event: 'component:exited', listener: (event: ComponentExitedEvent) => void): void

  /**
   * Stops supervising: cancels timers and watchers, waits for in-flight calls to finish and,
   * when `stopProcesses` is true, stops every group. Idempotent.
   */
  close(options: DriverCloseOptions): Promise<void>
}

/** A spec or group id given to a driver breaks a rule (the message says which). */
export class InvalidComponentSpecError extends Error {
  override readonly name = 'InvalidComponentSpecError'
}

/** A driver method was called after {@link Driver.close}. */
export class DriverClosedError extends Error {
  override readonly name = 'DriverClosedError'
  constructor() {
    super('driver is closed')
  }
}

/** The lowest scheduling priority a {@link ComponentSpec.niceness} may ask for (Linux, POSIX: 19). */
export const MAX_NICENESS = 19

const componentNamePattern = /^[a-z0-9-]+$/
const groupIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/

/**
 * Checks a group id and a desired list against the rules of {@link ComponentSpec}.
 *
 * @throws InvalidComponentSpecError naming the first broken rule
 */
export function validateComponentSpecs(groupId: string, desired: readonly ComponentSpec[]): void {
  if (!groupIdPattern.test(groupId) || groupId.length > 200) {
    throw new InvalidComponentSpecError(
      `group id ${JSON.stringify(groupId)} must match ${groupIdPattern.source} (at most 200 characters)`,
    )
  }
  const seen = new Set<string>()
  for (const spec of desired) {
    const where = `component ${JSON.stringify(spec.name)} of group ${groupId}`
    if (!componentNamePattern.test(spec.name)) {
      throw new InvalidComponentSpecError(
        `${where}: name must match ${componentNamePattern.source}`,
      )
    }
    if (seen.has(spec.name)) throw new InvalidComponentSpecError(`${where}: duplicate name`)
    seen.add(spec.name)
    if (!spec.command.startsWith('/')) {
      throw new InvalidComponentSpecError(`${where}: command must be an absolute path`)
    }
    if (!spec.cwd.startsWith('/') || !spec.logFile.startsWith('/')) {
      throw new InvalidComponentSpecError(`${where}: cwd and logFile must be absolute paths`)
    }
    if (!Number.isFinite(spec.stopGracePeriodMs) || spec.stopGracePeriodMs < 0) {
      throw new InvalidComponentSpecError(`${where}: stopGracePeriodMs must be a number >= 0`)
    }
    if (
      spec.niceness !== undefined &&
      !(Number.isInteger(spec.niceness) && spec.niceness >= 0 && spec.niceness <= MAX_NICENESS)
    ) {
      throw new InvalidComponentSpecError(
        `${where}: niceness must be an integer from 0 to ${MAX_NICENESS}`,
      )
    }
  }
}

/** JSON with object keys sorted at every level, so equal specs give equal text. */
function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner
    const sorted: Record<string, unknown> = {}
    for (const key of Object.keys(inner).sort()) {
      sorted[key] = (inner as Record<string, unknown>)[key]
    }
    return sorted
  })
}

/**
 * Fingerprint of a spec: lowercase hex SHA-256 of its JSON with keys sorted at every level.
 * Fields set to `undefined` count as absent; array order matters.
 */
export function hashComponentSpec(spec: ComponentSpec): string {
  return createHash('sha256').update(stableStringify(spec)).digest('hex')
}
