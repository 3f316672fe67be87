/**
 * The local driver: runs components as supervised OS processes on this machine.
 *
 * How it works:
 * - Each process is spawned without a shell in its own process group (`detached`), with stdout
 *   and stderr appended to its spec's `logFile`, so it survives the control plane.
 * - For each running process a pid file `<runDir>/<groupId>/<name>.json` ({@link PidFileRecord},
 *   mode 0600) records the pid, its start time from `/proc` and the full spec. The spec's env
 *   and args hold secrets (Fernet key, JWT secret, passwords), so a driver given a
 *   {@link SpecCodec} stores the spec sealed (`sealedSpec`); without one it is stored in clear
 *   (`spec`), as older versions did. {@link LocalDriver.open} reads these files and adopts the
 *   processes that are still the same `(pid, start time)`; the others are started again from
 *   the recorded spec. A record of a stop under way (`stopRequestedAt`, `stopDeadlineAt`) is
 *   honoured instead: the driver keeps waiting until that deadline, never signals again and
 *   never restarts it. A pid reused by another program is never signalled. A process whose
 *   recorded spec cannot be read (the codec cannot open it) is stopped, never left running
 *   unsupervised: the stop settings are kept in clear in the record for that.
 * - A spec's `niceness` is applied before its command runs (through `nice`, inherited by every
 *   child) and to its session's autogroup (see `priority.ts`).
 * - Logs never carry a spec's env or args (spawn errors are logged without their `spawnargs`).
 * - Unexpected exits (the child's `exit` event, or polling `/proc` for adopted processes, which
 *   are not our children) are reported as `component:exited` and followed by a restart with
 *   capped exponential backoff; too many exits in a window mark the component `crash-looping`.
 * - Stopping sends the stop signal to the main pid only, waits the grace period, then SIGKILLs
 *   the whole process group; leftover group members are SIGKILLed after a clean exit too.
 *
 * Spawning and pid-file writes are synchronous on purpose: a start is then atomic with respect
 * to every other callback (a stop can never interleave with a half-done spawn).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { mkdir, readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { setPriority } from 'node:os'
import type { Logger } from 'pino'
import {
  DriverClosedError,
  hashComponentSpec,
  validateComponentSpecs,
  type ComponentExitedEvent,
  type ComponentPhase,
  type ComponentSpec,
  type ComponentState,
  type Driver,
  type DriverCloseOptions,
  type StopOptions,
  type StopSignal,
} from '../driver.js'
import {
  isProcessAlive,
  isProcessAliveSync,
  listProcessGroupMembers,
  readProcessStatSync,
} from './proc.js'
import { prioritizedCommand, setAutogroupNiceness, type PrioritizedCommand } from './priority.js'

/**
 * Encrypts the specs stored in pid files, e.g. functions backed by the control plane's
 * master-key `SecretBox` (`sealJson`/`openJson`). Both functions are synchronous.
 */
export interface SpecCodec {
  /** Encrypts `plaintext` (a spec's JSON); the result is stored as it is in the pid file. */
  seal(plaintext: string): string
  /**
   * Decrypts a value returned by `seal`.
   * @throws when it cannot (another key, an altered value); the driver then stops the process
   */
  open(sealed: string): string
}

/** Settings of {@link LocalDriver}. */
export interface LocalDriverOptions {
  /** Folder for pid files (created with mode 0700 by {@link LocalDriver.open}). */
  runDir: string
  /** Parent logger; the driver logs under a child with `{ driver: 'local' }`. */
  logger: Logger
  /**
   * Delay before restarting a component that exited: `initialMs`, doubled after each further
   * exit, at most `maxMs`; back to `initialMs` once a run lasted `stableAfterMs`.
   * @default { initialMs: 1000, maxMs: 30000 }
   */
  restartBackoff?: { initialMs: number; maxMs: number }
  /**
   * A component that exits more than `maxRestarts` times within `windowMs` is `crash-looping`.
   * @default { maxRestarts: 3, windowMs: 60000 }
   */
  crashLoop?: { maxRestarts: number; windowMs: number }
  /**
   * How long a run must last to count as stable: a crash-looping component is `running` again
   * and its exit counters and backoff are reset.
   * @default 30000
   */
  stableAfterMs?: number
  /**
   * How long a new process is `starting` before it counts as `running`.
   * @default 2000
   */
  startingPeriodMs?: number
  /**
   * How often adopted processes (not our children, so no `exit` event) are checked in `/proc`.
   * @default 500
   */
  pollIntervalMs?: number
  /**
   * Restart components that exit, and start again those found dead at adoption. A driver
   * opened only to stop everything (`airdock stop-all`) turns this off, so it never starts a
   * process it is about to stop.
   * @default true
   */
  restartExited?: boolean
  /**
   * Seals the spec in every pid file written (`sealedSpec` instead of the clear-text `spec`),
   * and opens it when the driver is opened. Pid files in clear text (older versions, or a
   * driver without a codec) are still adopted, and rewritten sealed. Without a codec, specs are
   * stored in clear text and sealed ones cannot be read (their processes are stopped).
   */
  specCodec?: SpecCodec
}

/** Content of a pid file `<runDir>/<groupId>/<name>.json`. */
export interface PidFileRecord {
  /** Main pid (= process group id); `null` when the last spawn failed. */
  pid: number | null
  /** Field 22 of `/proc/<pid>/stat` at spawn; `(pid, startTimeTicks)` identifies the process. */
  startTimeTicks: string | null
  /** {@link hashComponentSpec} of the spec (a SHA-256 digest, no clear text). */
  specHash: string
  /** ISO 8601 instant the process was started; `null` when the last spawn failed. */
  startedAt: string | null
  /** {@link ComponentSpec.component}. */
  component: string
  /**
   * The full spec in clear text, so a driver opened later can start the component again.
   * Written only by a driver without a {@link SpecCodec} (and by older versions).
   */
  spec?: ComponentSpec
  /**
   * {@link SpecCodec.seal} of the spec's JSON, written instead of `spec` by a driver with a
   * codec. Neither is present when the spec was already unreadable (the process is being
   * stopped).
   */
  sealedSpec?: string
  /**
   * The spec's {@link ComponentSpec.stopSignal}, in clear so that a driver that cannot read the
   * spec still stops the process as its spec asks.
   */
  stopSignal?: StopSignal
  /** The spec's {@link ComponentSpec.stopGracePeriodMs}, in clear for the same reason. */
  stopGracePeriodMs?: number
  /**
   * ISO 8601 instant its stop signal was sent, while a stop is under way (absent otherwise). A
   * driver opened later keeps waiting for it instead of adopting it as running, and never
   * signals it again (a second SIGTERM turns Celery's warm shutdown into a cold one).
   */
  stopRequestedAt?: string | null
  /**
   * ISO 8601 instant after which the stop under way ends with SIGKILL (its grace period, or less
   * when a caller capped it), so a capped stop stays capped across a driver restart.
   */
  stopDeadlineAt?: string | null
}

/** One run of a component's process. */
interface Incarnation {
  pid: number
  /** `undefined` only when `/proc` could not be read right after spawn. */
  startTimeTicks: string | undefined
  startedAt: Date
  /** Our child (we get its `exit` event); absent for adopted processes. */
  child?: ChildProcess
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void
  /** Found running by {@link LocalDriver.open}; supervised by polling. */
  adopted: boolean
  gone: boolean
  /** Resolves once the process is gone. */
  exited: Promise<void>
  markExited: () => void
  /** Clears the crash-loop state once this run has lasted `stableAfterMs`. */
  stableTimer?: NodeJS.Timeout
}

/** Supervision state of one component. */
interface Managed {
  groupId: string
  /** The spec it runs; a stand-in with only name, component and stop settings when `specUnknown`. */
  spec: ComponentSpec
  specHash: string
  /**
   * Its recorded spec could not be read at adoption: it is being stopped and is never started,
   * and its pid file keeps the recorded `sealedSpec` as it was.
   */
  specUnknown: boolean
  /** The spec as stored in the pid file: sealed once by the codec, or as recorded when unknown. */
  sealedSpec?: string
  current?: Incarnation
  restarts: number
  lastExitCode?: number | null
  lastExitSignal?: string | null
  message?: string
  /** Instants (ms since epoch) of recent unexpected exits, within the crash-loop window. */
  exitTimesMs: number[]
  /** Exponent of the next restart delay. */
  backoffAttempt: number
  crashLooping: boolean
  /** Set once a stop begins; a stopped component is never restarted. */
  stopping: boolean
  /** When the stop signal was sent (recorded in the pid file). */
  stopRequestedAt?: Date
  /** Settles when the stop that began is over (process gone, pid file removed). */
  stopped?: Promise<void>
  /** Ends the grace period of the stop under way now (then SIGKILL follows). */
  forceStop?: () => void
  /** Timer that calls `forceStop` at `forceAtMs`. */
  forceTimer?: NodeJS.Timeout
  forceAtMs?: number
  /** `/proc` watcher of an adopted process being stopped. */
  stopWatcher?: NodeJS.Timeout
  restartTimer?: NodeJS.Timeout
  /** Bumped on every spawn and stop, so late callbacks of an older attempt are ignored. */
  attempt: number
}

const defaultRestartBackoff = { initialMs: 1000, maxMs: 30_000 }
const defaultCrashLoop = { maxRestarts: 3, windowMs: 60_000 }
/** How long to wait for a process to vanish after SIGKILL before giving up (it may be in `D` state). */
const killWaitMs = 5000
/** How often a process being stopped is checked in `/proc` when it is not our child. */
const stopPollIntervalMs = 20
const groupIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
const stopSignals: readonly string[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'] satisfies StopSignal[]
/** Grace period of a process whose recorded spec is unreadable and records no stop settings. */
const unknownSpecStopGracePeriodMs = 30_000
/** Retries of a rate-limited autogroup nice write (the kernel allows one per 100 ms). */
const autogroupAttempts = 50
const autogroupRetryMs = 120

/** Local {@link Driver}: components are supervised OS processes (see the file comment). */
export class LocalDriver implements Driver {
  private readonly runDir: string
  private readonly log: Logger
  private readonly restartBackoff: { initialMs: number; maxMs: number }
  private readonly crashLoop: { maxRestarts: number; windowMs: number }
  private readonly stableAfterMs: number
  private readonly startingPeriodMs: number
  private readonly pollIntervalMs: number
  private readonly restartExited: boolean
  private readonly specCodec: SpecCodec | undefined
  private readonly groupsById = new Map<string, Map<string, Managed>>()
  private readonly chains = new Map<string, Promise<unknown>>()
  private readonly listeners: ((event: ComponentExitedEvent) => void)[] = []
  private pollTimer: NodeJS.Timeout | undefined
  /** Set when close() begins: no new calls. */
  private closing: Promise<void> | undefined
  /** Set once close() has let in-flight calls finish: no more spawns, restarts or polls. */
  private detached = false

  /**
   * Creates a driver that knows no group yet. Prefer {@link LocalDriver.open}, which also
   * adopts the processes of a previous run.
   */
  constructor(options: LocalDriverOptions) {
    this.runDir = path.resolve(options.runDir)
    this.log = options.logger.child({ driver: 'local' })
    this.restartBackoff = options.restartBackoff ?? defaultRestartBackoff
    this.crashLoop = options.crashLoop ?? defaultCrashLoop
    this.stableAfterMs = options.stableAfterMs ?? 30_000
    this.startingPeriodMs = options.startingPeriodMs ?? 2000
    this.pollIntervalMs = options.pollIntervalMs ?? 500
    this.restartExited = options.restartExited ?? true
    this.specCodec = options.specCodec
  }

  /**
   * Creates `runDir` if needed and opens a driver on it: every pid file found is a known
   * component; a process still alive with the recorded start time is adopted (not signalled),
   * any other is started again from the recorded spec — except a component whose stop was under
   * way: it is waited for until its recorded deadline (then SIGKILLed), never restarted. Corrupt
   * pid files are logged and removed. A pid file whose spec cannot be read (sealed, and
   * `specCodec` is missing or cannot open it; or a spec that breaks the rules, which older
   * versions removed as corrupt, leaving its process unsupervised) is logged, and its process
   * — still the recorded `(pid, start time)` — is stopped with the recorded stop settings
   * (observed as `stopping` meanwhile, and {@link LocalDriver.specOf} is undefined), then the
   * file is removed: such a process is never left unsupervised, nor run twice by an `apply`.
   *
   * @throws the file-system error when `runDir` cannot be created or read
   */
  static async open(options: LocalDriverOptions): Promise<LocalDriver> {
    const driver = new LocalDriver(options)
    await driver.adoptAll()
    return driver
  }

  /** {@inheritDoc Driver.apply} */
  async apply(
    groupId: string,
    desired: readonly ComponentSpec[],
    options: StopOptions = {},
  ): Promise<ComponentState[]> {
    this.assertOpen()
    validateComponentSpecs(groupId, desired)
    const specs = desired.map((spec) => structuredClone(spec))
    const cap = options.maxStopGracePeriodMs
    return this.serialize(groupId, async () => {
      const group = this.ensureGroup(groupId)
      const desiredByName = new Map(specs.map((spec) => [spec.name, spec]))
      const work: Promise<void>[] = []
      for (const managed of [...group.values()]) {
        const next = desiredByName.get(managed.spec.name)
        if (next === undefined) {
          // Not awaited: a draining Celery worker may take hours.
          void this.stopComponent(managed, cap).then(() => {
            if (group.get(managed.spec.name) === managed) group.delete(managed.spec.name)
          })
        } else if (managed.stopping || hashComponentSpec(next) !== managed.specHash) {
          work.push(
            this.stopComponent(managed, cap).then(() => {
              const replacement = this.newManaged(groupId, next)
              group.set(next.name, replacement)
              this.spawnComponent(replacement)
            }),
          )
        }
      }
      for (const spec of specs) {
        if (group.has(spec.name)) continue
        const managed = this.newManaged(groupId, spec)
        group.set(spec.name, managed)
        this.spawnComponent(managed)
      }
      await Promise.all(work)
      return this.observe(groupId)
    })
  }

  /** {@inheritDoc Driver.observe} */
  observe(groupId: string): ComponentState[] {
    const group = this.groupsById.get(groupId)
    if (group === undefined) return []
    return [...group.values()]
      .map((managed) => this.stateOf(managed))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** {@inheritDoc Driver.stopGroup} */
  async stopGroup(groupId: string, options: StopOptions = {}): Promise<void> {
    this.assertOpen()
    if (!groupIdPattern.test(groupId)) return
    await this.serialize(groupId, () => this.stopGroupNow(groupId, options.maxStopGracePeriodMs))
  }

  /**
   * {@inheritDoc Driver.specOf}
   *
   * Also undefined for a component being stopped because its recorded spec could not be read.
   */
  specOf(groupId: string, name: string): ComponentSpec | undefined {
    const managed = this.groupsById.get(groupId)?.get(name)
    return managed === undefined || managed.specUnknown ? undefined : structuredClone(managed.spec)
  }

  /** {@inheritDoc Driver.groups} */
  groups(): string[] {
    return [...this.groupsById.keys()].sort()
  }

  /** {@inheritDoc Driver.on} */
  on(_event: 'component:exited', listener: (event: ComponentExitedEvent) => void): void {
    this.listeners.push(listener)
  }

  /**
   * {@inheritDoc Driver.close}
   *
   * With `stopProcesses: false` the children are detached (`unref`), so the Node process can
   * exit while they keep running; their pid files stay for the next {@link LocalDriver.open}.
   */
  close(options: DriverCloseOptions): Promise<void> {
    this.closing ??= this.closeNow(options)
    return this.closing
  }

  private async closeNow({ stopProcesses }: DriverCloseOptions): Promise<void> {
    await Promise.allSettled([...this.chains.values()])
    this.detached = true
    if (stopProcesses) {
      await Promise.all(this.groups().map((groupId) => this.stopGroupNow(groupId)))
    }
    clearTimeout(this.pollTimer)
    this.pollTimer = undefined
    for (const group of this.groupsById.values()) {
      for (const managed of group.values()) {
        clearTimeout(managed.restartTimer)
        managed.restartTimer = undefined
        // A stop under way is left to finish on its own; the next driver keeps waiting for it.
        clearTimeout(managed.forceTimer)
        clearInterval(managed.stopWatcher)
        managed.attempt++
        const incarnation = managed.current
        if (incarnation === undefined) continue
        clearTimeout(incarnation.stableTimer)
        if (incarnation.child !== undefined && incarnation.onExit !== undefined) {
          incarnation.child.off('exit', incarnation.onExit)
          incarnation.child.unref()
        }
      }
    }
  }

  private assertOpen(): void {
    if (this.closing !== undefined) throw new DriverClosedError()
  }

  /** Runs `task` after every earlier call for the same group has settled. */
  private serialize<T>(groupId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(groupId) ?? Promise.resolve()
    const run = previous.then(task)
    const settled = run.then(
      () => undefined,
      () => undefined,
    )
    this.chains.set(groupId, settled)
    void settled.then(() => {
      if (this.chains.get(groupId) === settled) this.chains.delete(groupId)
    })
    return run
  }

  private groupDir(groupId: string): string {
    return path.join(this.runDir, groupId)
  }

  private pidFilePath(managed: Managed): string {
    return path.join(this.groupDir(managed.groupId), `${managed.spec.name}.json`)
  }

  private ensureGroup(groupId: string): Map<string, Managed> {
    let group = this.groupsById.get(groupId)
    if (group === undefined) {
      group = new Map()
      this.groupsById.set(groupId, group)
    }
    mkdirSync(this.groupDir(groupId), { recursive: true, mode: 0o700 })
    return group
  }

  private newManaged(groupId: string, spec: ComponentSpec): Managed {
    return {
      groupId,
      spec,
      specHash: hashComponentSpec(spec),
      specUnknown: false,
      restarts: 0,
      exitTimesMs: [],
      backoffAttempt: 0,
      crashLooping: false,
      stopping: false,
      attempt: 0,
    }
  }

  private stateOf(managed: Managed): ComponentState {
    const incarnation = managed.current
    let phase: ComponentPhase
    if (managed.stopping) {
      phase = 'stopping'
    } else if (incarnation === undefined) {
      phase = managed.crashLooping ? 'crash-looping' : 'exited'
    } else if (managed.crashLooping) {
      phase = 'crash-looping'
    } else {
      const upMs = Date.now() - incarnation.startedAt.getTime()
      phase = incarnation.adopted || upMs >= this.startingPeriodMs ? 'running' : 'starting'
    }
    const state: ComponentState = {
      name: managed.spec.name,
      component: managed.spec.component,
      phase,
      restarts: managed.restarts,
      specHash: managed.specHash,
    }
    if (incarnation !== undefined) {
      state.pid = incarnation.pid
      state.startedAt = new Date(incarnation.startedAt)
    }
    if (managed.lastExitCode !== undefined) state.lastExitCode = managed.lastExitCode
    if (managed.lastExitSignal !== undefined) state.lastExitSignal = managed.lastExitSignal
    if (managed.message !== undefined) state.message = managed.message
    return state
  }

  /** Starts the component's process now (synchronously; failures become an exit + restart). */
  private spawnComponent(managed: Managed): void {
    if (this.detached || managed.stopping) return
    const attempt = ++managed.attempt
    const { spec } = managed
    let child: ChildProcess
    let fd: number | undefined
    let run: PrioritizedCommand
    try {
      mkdirSync(path.dirname(spec.logFile), { recursive: true })
      fd = openSync(spec.logFile, 'a', 0o640)
      run = prioritizedCommand(spec)
      child = spawn(run.command, run.args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        shell: false,
        stdio: ['ignore', fd, fd],
        ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
        ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
      })
    } catch (err) {
      this.handleSpawnFailure(managed, attempt, err)
      return
    } finally {
      // The child holds its own copies of the descriptor.
      if (fd !== undefined) closeSync(fd)
    }
    const pid = child.pid
    if (pid === undefined) {
      // spawn() reports ENOENT, EACCES, a missing cwd, … through an 'error' event.
      child.once('error', (err) => this.handleSpawnFailure(managed, attempt, err))
      return
    }
    // The child cannot have been reaped yet (that needs the event loop), so /proc has it.
    const stat = readProcessStatSync(pid)
    const incarnation = this.newIncarnation(pid, stat?.startTimeTicks, new Date(), false)
    incarnation.child = child
    incarnation.onExit = (code, signal) => this.handleGone(managed, incarnation, code, signal)
    child.once('exit', incarnation.onExit)
    child.on('error', (err) => {
      this.log.warn(
        { groupId: managed.groupId, name: spec.name, pid, error: safeError(err) },
        'component process error',
      )
    })
    managed.current = incarnation
    if ((spec.niceness ?? 0) > 0) this.applyNiceness(managed, incarnation, run.setAfterSpawn)
    // A crash-loop message stays until the component recovers; any other was about the past.
    if (!managed.crashLooping) managed.message = undefined
    this.armStableTimer(managed, incarnation)
    this.savePidFile(managed)
    this.log.info(
      { groupId: managed.groupId, name: spec.name, component: spec.component, pid },
      'component started',
    )
  }

  /**
   * Finishes a niced spawn (see `priority.ts`): the process nice value when no `nice`
   * executable could set it, and the nice value of the component's session (autogroup),
   * retried while the kernel rate-limits the write. Failures are logged, never thrown: the
   * component runs, at normal priority.
   */
  private applyNiceness(managed: Managed, incarnation: Incarnation, setAfterSpawn: number): void {
    const niceness = managed.spec.niceness ?? 0
    const where = { groupId: managed.groupId, name: managed.spec.name, pid: incarnation.pid }
    if (setAfterSpawn > 0) {
      try {
        setPriority(incarnation.pid, setAfterSpawn)
      } catch (err) {
        this.log.warn({ ...where, error: safeError(err) }, 'component niceness not set')
      }
    }
    const attempt = (left: number): void => {
      if (incarnation.gone || managed.current !== incarnation || this.detached) return
      try {
        if (setAutogroupNiceness(incarnation.pid, niceness) === 'retry' && left > 0) {
          setTimeout(() => attempt(left - 1), autogroupRetryMs).unref()
        }
      } catch (err) {
        this.log.warn({ ...where, error: safeError(err) }, 'component autogroup niceness not set')
      }
    }
    attempt(autogroupAttempts)
  }

  private newIncarnation(
    pid: number,
    startTimeTicks: string | undefined,
    startedAt: Date,
    adopted: boolean,
  ): Incarnation {
    let markExited = (): void => undefined
    const exited = new Promise<void>((resolve) => {
      markExited = resolve
    })
    return { pid, startTimeTicks, startedAt, adopted, gone: false, exited, markExited }
  }

  /** While crash-looping, a run that lasts `stableAfterMs` clears the crash-loop state. */
  private armStableTimer(managed: Managed, incarnation: Incarnation): void {
    if (!managed.crashLooping) return
    incarnation.stableTimer = setTimeout(() => {
      if (managed.current !== incarnation || incarnation.gone || managed.stopping) return
      managed.crashLooping = false
      managed.exitTimesMs = []
      managed.backoffAttempt = 0
      managed.message = undefined
      this.log.info(
        { groupId: managed.groupId, name: managed.spec.name, pid: incarnation.pid },
        'component recovered',
      )
    }, this.stableAfterMs)
  }

  private handleSpawnFailure(managed: Managed, attempt: number, error: unknown): void {
    if (attempt !== managed.attempt || managed.stopping || this.detached) return
    // Never the error itself: its `spawnargs` (and some messages) quote the spec.
    const summary = safeError(error)
    this.log.error(
      { groupId: managed.groupId, name: managed.spec.name, error: summary },
      'component spawn failed',
    )
    managed.lastExitCode = null
    managed.lastExitSignal = null
    // Keep the spec on disk so a driver opened later still knows the component.
    this.savePidFile(managed)
    this.emitExited({ groupId: managed.groupId, name: managed.spec.name, code: null, signal: null })
    this.scheduleRestart(managed, new Date())
    managed.message = `spawn failed: ${summary.message}`
  }

  /** Called once per incarnation when its process is found gone (exit event or `/proc`). */
  private handleGone(
    managed: Managed,
    incarnation: Incarnation,
    code: number | null,
    signal: string | null,
  ): void {
    if (incarnation.gone) return
    incarnation.gone = true
    clearTimeout(incarnation.stableTimer)
    incarnation.markExited()
    if (managed.current !== incarnation) return
    managed.current = undefined
    managed.lastExitCode = code
    managed.lastExitSignal = signal
    // An intentional stop finishes in stopComponent(); a closing driver restarts nothing.
    if (managed.stopping || this.detached) return
    const { groupId } = managed
    const { name } = managed.spec
    this.log.warn({ groupId, name, pid: incarnation.pid, code, signal }, 'component exited')
    // Descendants of a crashed process would otherwise run twice after the restart.
    this.killGroupLeftovers(incarnation)
    this.emitExited({ groupId, name, code, signal })
    this.scheduleRestart(managed, incarnation.startedAt)
  }

  private emitExited(event: ComponentExitedEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch (err) {
        this.log.error({ groupId: event.groupId, name: event.name, err }, 'listener failed')
      }
    }
  }

  private scheduleRestart(managed: Managed, startedAt: Date): void {
    const nowMs = Date.now()
    if (nowMs - startedAt.getTime() >= this.stableAfterMs) {
      managed.exitTimesMs = []
      managed.backoffAttempt = 0
      managed.crashLooping = false
      managed.message = undefined
    }
    managed.exitTimesMs = managed.exitTimesMs.filter((t) => t > nowMs - this.crashLoop.windowMs)
    managed.exitTimesMs.push(nowMs)
    if (!managed.crashLooping && managed.exitTimesMs.length > this.crashLoop.maxRestarts) {
      managed.crashLooping = true
      managed.message = `exited ${managed.exitTimesMs.length} times within ${this.crashLoop.windowMs} ms`
      this.log.warn(
        {
          groupId: managed.groupId,
          name: managed.spec.name,
          exits: managed.exitTimesMs.length,
          windowMs: this.crashLoop.windowMs,
        },
        'component crash-looping',
      )
    }
    const exponent = Math.min(managed.backoffAttempt, 30)
    const delayMs = Math.min(
      this.restartBackoff.initialMs * 2 ** exponent,
      this.restartBackoff.maxMs,
    )
    managed.backoffAttempt++
    clearTimeout(managed.restartTimer)
    const attempt = managed.attempt
    managed.restartTimer = setTimeout(() => {
      managed.restartTimer = undefined
      if (attempt !== managed.attempt || managed.stopping || this.detached) return
      if (!this.restartExited) return
      managed.restarts++
      this.spawnComponent(managed)
    }, delayMs)
  }

  /**
   * Stops one component for good: stop signal to the main pid, SIGKILL to the process group
   * after the grace period (capped by `maxGracePeriodMs`), leftovers SIGKILLed, pid file removed.
   * Idempotent: a second call returns the stop under way (shortened to the cap, if given).
   */
  private stopComponent(managed: Managed, maxGracePeriodMs?: number): Promise<void> {
    if (managed.stopped !== undefined) {
      if (maxGracePeriodMs !== undefined) this.shortenStop(managed, maxGracePeriodMs)
      return managed.stopped
    }
    managed.stopping = true
    managed.attempt++
    clearTimeout(managed.restartTimer)
    managed.restartTimer = undefined
    const incarnation = managed.current
    const graceMs = Math.min(managed.spec.stopGracePeriodMs, maxGracePeriodMs ?? Infinity)
    if (incarnation !== undefined && !incarnation.gone) {
      managed.stopRequestedAt = new Date()
      managed.forceAtMs = Date.now() + graceMs
      this.savePidFile(
        managed,
        'could not record the stop; a driver opened after a restart may signal it again',
      )
    }
    managed.stopped = this.finishStop(managed, incarnation, graceMs, true)
    return managed.stopped
  }

  /** Ends the process of a stopping component (signalling it first if asked), then its pid file. */
  private async finishStop(
    managed: Managed,
    incarnation: Incarnation | undefined,
    graceMs: number,
    sendSignal: boolean,
  ): Promise<void> {
    try {
      if (incarnation !== undefined && !incarnation.gone) {
        await this.terminate(managed, incarnation, graceMs, sendSignal)
      }
      // A closed driver leaves the record to the next one (which may already have rewritten it).
      if (!this.detached) rmSync(this.pidFilePath(managed), { force: true })
    } catch (err) {
      this.log.error({ groupId: managed.groupId, name: managed.spec.name, err }, 'stop failed')
    }
    this.log.info(
      { groupId: managed.groupId, name: managed.spec.name, pid: incarnation?.pid },
      'component stopped',
    )
  }

  /** Makes the grace period of the stop under way end at most `maxMs` from now. */
  private shortenStop(managed: Managed, maxMs: number): void {
    if (managed.forceStop === undefined) return
    if ((managed.forceAtMs ?? Infinity) <= Date.now() + maxMs) return
    this.armForceTimer(managed, maxMs)
    // Recorded, so a driver opened after a restart keeps the shortened deadline.
    if (managed.stopRequestedAt !== undefined && !this.detached) this.savePidFile(managed)
  }

  private armForceTimer(managed: Managed, delayMs: number): void {
    clearTimeout(managed.forceTimer)
    managed.forceAtMs = Date.now() + delayMs
    const force = managed.forceStop
    managed.forceTimer = setTimeout(() => force?.(), delayMs)
  }

  private async terminate(
    managed: Managed,
    incarnation: Incarnation,
    graceMs: number,
    sendSignal: boolean,
  ): Promise<void> {
    const { pid } = incarnation
    const logFields = { groupId: managed.groupId, name: managed.spec.name, pid }
    // Adopted processes are not our children: watch /proc instead of waiting for 'exit'.
    if (incarnation.child === undefined) {
      // A drain may last hours: poll at the driver's usual pace, faster once SIGKILL is sent.
      managed.stopWatcher = this.watchUntilGone(managed, incarnation, this.pollIntervalMs)
    }
    try {
      if (sendSignal) this.signal(pid, managed.spec.stopSignal ?? 'SIGTERM', logFields)
      const graceOver = new Promise<false>((resolve) => {
        managed.forceStop = () => resolve(false)
      })
      this.armForceTimer(managed, graceMs)
      const exitedInTime = await Promise.race([
        incarnation.exited.then(() => true as const),
        graceOver,
      ])
      clearTimeout(managed.forceTimer)
      managed.forceStop = undefined
      if (!exitedInTime) {
        this.log.warn(
          { ...logFields, stopGracePeriodMs: graceMs },
          'component stop grace period over',
        )
        if (incarnation.child === undefined) {
          clearInterval(managed.stopWatcher)
          managed.stopWatcher = this.watchUntilGone(managed, incarnation, stopPollIntervalMs)
        }
        this.signal(-pid, 'SIGKILL', logFields)
        this.signal(pid, 'SIGKILL', logFields)
        if (!(await waitWithTimeout(incarnation.exited, killWaitMs))) {
          this.log.error(logFields, 'component survived SIGKILL')
        }
      }
    } finally {
      clearInterval(managed.stopWatcher)
      managed.stopWatcher = undefined
    }
    this.killGroupLeftovers(incarnation)
    await this.waitForEmptyGroup(pid, killWaitMs)
  }

  /** Polls `/proc` quickly until an adopted process is gone, then reports it. */
  private watchUntilGone(
    managed: Managed,
    incarnation: Incarnation,
    intervalMs: number,
  ): NodeJS.Timeout {
    return setInterval(() => {
      if (incarnation.gone) return
      const ticks = incarnation.startTimeTicks
      if (ticks === undefined || !isProcessAliveSync(incarnation.pid, ticks)) {
        this.handleGone(managed, incarnation, null, null)
      }
    }, intervalMs)
  }

  /**
   * SIGKILLs whatever is left in the group of a process that has ended. Skipped when the pid now
   * belongs to another process: then no member of our group can be left (the kernel keeps a
   * number that is still some group's id from being reused) and that group is someone else's.
   */
  private killGroupLeftovers(incarnation: Incarnation): void {
    const stat = readProcessStatSync(incarnation.pid)
    if (stat !== undefined && stat.startTimeTicks !== incarnation.startTimeTicks) return
    this.signal(-incarnation.pid, 'SIGKILL', { pid: incarnation.pid })
  }

  private async waitForEmptyGroup(pgid: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const members = await listProcessGroupMembers(pgid)
      if (members.length === 0) return
      if (Date.now() >= deadline) {
        this.log.error({ pgid, members }, 'process group not empty after SIGKILL')
        return
      }
      await new Promise((resolve) => setTimeout(resolve, stopPollIntervalMs))
    }
  }

  /** `process.kill` that treats "no such process" as done and logs other failures. */
  private signal(pid: number, signal: NodeJS.Signals, logFields: Record<string, unknown>): void {
    try {
      process.kill(pid, signal)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return
      this.log.warn({ ...logFields, target: pid, signal, err }, 'signal failed')
    }
  }

  private async stopGroupNow(groupId: string, maxGracePeriodMs?: number): Promise<void> {
    const group = this.groupsById.get(groupId)
    if (group !== undefined) {
      await Promise.all(
        [...group.values()].map((managed) => this.stopComponent(managed, maxGracePeriodMs)),
      )
      this.groupsById.delete(groupId)
    }
    await rm(this.groupDir(groupId), { recursive: true, force: true })
  }

  /**
   * {@link writePidFile} that logs instead of throwing: it runs from timers and exit handlers,
   * where an exception would take the control plane down. Without the file the process runs
   * on but is not adopted after a restart.
   */
  private savePidFile(managed: Managed, failureMessage = 'pid file write failed'): void {
    try {
      this.writePidFile(managed)
    } catch (err) {
      // The error may come from the codec: only its summary is logged.
      this.log.error(
        { groupId: managed.groupId, name: managed.spec.name, error: safeError(err) },
        failureMessage,
      )
    }
  }

  /**
   * Writes the component's {@link PidFileRecord} atomically (temporary file, then rename).
   * @throws the file-system error, or the codec's when sealing fails (nothing is then written)
   */
  private writePidFile(managed: Managed): void {
    const incarnation = managed.current
    const record: PidFileRecord = {
      pid: incarnation?.pid ?? null,
      startTimeTicks: incarnation?.startTimeTicks ?? null,
      specHash: managed.specHash,
      startedAt: incarnation?.startedAt.toISOString() ?? null,
      component: managed.spec.component,
      ...this.storedSpec(managed),
      ...(managed.stopRequestedAt
        ? { stopRequestedAt: managed.stopRequestedAt.toISOString() }
        : {}),
      ...(managed.stopRequestedAt && managed.forceAtMs !== undefined
        ? { stopDeadlineAt: new Date(managed.forceAtMs).toISOString() }
        : {}),
    }
    writeRecord(this.pidFilePath(managed), record)
  }

  /**
   * The spec fields of a pid file: the spec sealed (once per {@link Managed}) when the driver
   * has a codec, in clear otherwise; for an unknown spec, what was recorded (never in clear).
   * The stop settings are always kept in clear.
   */
  private storedSpec(
    managed: Managed,
  ): Pick<PidFileRecord, 'spec' | 'sealedSpec' | 'stopSignal' | 'stopGracePeriodMs'> {
    const { spec } = managed
    const stop = {
      ...(spec.stopSignal !== undefined ? { stopSignal: spec.stopSignal } : {}),
      stopGracePeriodMs: spec.stopGracePeriodMs,
    }
    if (managed.specUnknown) {
      return managed.sealedSpec === undefined ? stop : { sealedSpec: managed.sealedSpec, ...stop }
    }
    if (this.specCodec === undefined) return { spec, ...stop }
    managed.sealedSpec ??= this.specCodec.seal(JSON.stringify(spec))
    return { sealedSpec: managed.sealedSpec, ...stop }
  }

  /**
   * The spec recorded in a pid file: opened with the codec when sealed, else the clear `spec`.
   * @returns the spec, or why it cannot be read (a fixed text: never quotes the record)
   */
  private readSpec(
    groupId: string,
    name: string,
    value: Record<string, unknown>,
  ): { spec: ComponentSpec } | { reason: string } {
    let candidate: unknown
    if (typeof value.sealedSpec === 'string') {
      if (this.specCodec === undefined) return { reason: 'the spec is sealed and no codec is set' }
      let text: string
      try {
        text = this.specCodec.open(value.sealedSpec)
      } catch (err) {
        // Only the error's name: a codec's message or cause may quote decrypted text.
        const errorName = err instanceof Error ? err.name : typeof err
        return { reason: `the spec codec cannot open the sealed spec (${errorName})` }
      }
      try {
        candidate = JSON.parse(text)
      } catch {
        // Not logged: the parse error quotes the text.
        return { reason: 'the opened spec is not JSON' }
      }
    } else if (value.spec !== undefined) {
      candidate = value.spec
    } else {
      return { reason: 'no spec is recorded' }
    }
    const spec = checkSpec(groupId, name, candidate)
    return spec === undefined ? { reason: 'the recorded spec breaks the rules' } : { spec }
  }

  /** Reads every pid file under `runDir`; adopts live processes and restarts the others. */
  private async adoptAll(): Promise<void> {
    await mkdir(this.runDir, { recursive: true, mode: 0o700 })
    const entries = await readdir(this.runDir, { withFileTypes: true })
    for (const entry of entries) {
      if (!entry.isDirectory() || !groupIdPattern.test(entry.name)) continue
      const groupId = entry.name
      const group = this.ensureGroup(groupId)
      const files = await readdir(this.groupDir(groupId))
      for (const file of files.sort()) {
        const filePath = path.join(this.groupDir(groupId), file)
        if (file.endsWith('.tmp')) {
          // An atomic write cut short by a crash; the real file (if any) is intact.
          await rm(filePath, { force: true })
          continue
        }
        if (!file.endsWith('.json')) continue
        const name = file.slice(0, -'.json'.length)
        const parsed = parsePidFile(await readFile(filePath, 'utf8'))
        if (parsed === undefined) {
          this.log.warn({ groupId, file: filePath }, 'corrupt pid file removed')
          await rm(filePath, { force: true })
          continue
        }
        const { record, value } = parsed
        const read = this.readSpec(groupId, name, value)
        let managed: Managed
        if ('reason' in read) {
          // Its process is ours (the caller checks the start time): stop it, never orphan it.
          this.log.warn(
            { groupId, name, pid: record.pid, reason: read.reason },
            'pid file spec unreadable: its process is stopped, not adopted',
          )
          managed = this.newManaged(groupId, standInSpec(name, value))
          managed.specUnknown = true
          managed.stopping = true
          if (typeof value.sealedSpec === 'string') managed.sealedSpec = value.sealedSpec
          if (typeof value.specHash === 'string') managed.specHash = value.specHash
        } else {
          managed = this.newManaged(groupId, read.spec)
        }
        group.set(name, managed)
        await this.adoptOne(managed, record)
        if (
          'spec' in read &&
          this.specCodec !== undefined &&
          typeof value.sealedSpec !== 'string' &&
          managed.current !== undefined &&
          existsSync(filePath)
        ) {
          // Written in clear (older version, or no codec): sealed now, not at the next write.
          this.savePidFile(managed, 'could not seal the spec of a clear-text pid file')
        }
        if (managed.stopped !== undefined) {
          void managed.stopped.then(() => {
            if (group.get(name) === managed) group.delete(name)
          })
        }
      }
    }
    this.schedulePoll()
  }

  private async adoptOne(managed: Managed, record: PidFileRecord): Promise<void> {
    const { groupId } = managed
    const { name } = managed.spec
    const { pid, startTimeTicks } = record
    const alive =
      pid !== null && startTimeTicks !== null && (await isProcessAlive(pid, startTimeTicks))
    if (typeof record.stopRequestedAt === 'string') {
      // A stop was under way: keep waiting for it (never signal again), never restart it.
      managed.stopping = true
      managed.stopRequestedAt = new Date(record.stopRequestedAt)
      const incarnation =
        alive && pid !== null && startTimeTicks !== null
          ? this.newIncarnation(pid, startTimeTicks, new Date(record.startedAt ?? Date.now()), true)
          : undefined
      managed.current = incarnation
      if (incarnation === undefined && pid !== null && startTimeTicks !== null) {
        // Ended while nobody watched: clean up what is left of its group.
        this.killGroupLeftovers(this.newIncarnation(pid, startTimeTicks, new Date(), true))
      }
      const deadlineMs = Math.min(
        managed.stopRequestedAt.getTime() + managed.spec.stopGracePeriodMs,
        record.stopDeadlineAt ? Date.parse(record.stopDeadlineAt) : Infinity,
      )
      const remainingMs = Math.max(0, deadlineMs - Date.now())
      this.log.info({ groupId, name, pid, alive, remainingMs }, 'adopted a component being stopped')
      managed.stopped = this.finishStop(managed, incarnation, remainingMs, false)
      return
    }
    if (managed.specUnknown) {
      // Its spec cannot be read, so it can be neither supervised nor restarted: stop it.
      if (alive && pid !== null && startTimeTicks !== null) {
        const startedAt = record.startedAt === null ? new Date() : new Date(record.startedAt)
        managed.current = this.newIncarnation(pid, startTimeTicks, startedAt, true)
      } else if (pid !== null && startTimeTicks !== null) {
        this.killGroupLeftovers(this.newIncarnation(pid, startTimeTicks, new Date(), true))
      }
      managed.message = 'stopped: its recorded spec cannot be read'
      this.log.info({ groupId, name, pid, alive }, 'stopping a component whose spec is unreadable')
      void this.stopComponent(managed)
      return
    }
    if (alive && pid !== null && startTimeTicks !== null) {
      const startedAt = record.startedAt === null ? new Date() : new Date(record.startedAt)
      managed.current = this.newIncarnation(pid, startTimeTicks, startedAt, true)
      managed.message = 'adopted after a control-plane restart'
      this.log.info({ groupId, name, pid }, 'component adopted')
      return
    }
    if (pid !== null && startTimeTicks !== null) {
      // Ours but ended: clean up its group (see killGroupLeftovers for why this is safe).
      this.killGroupLeftovers(this.newIncarnation(pid, startTimeTicks, new Date(), true))
    }
    this.log.info({ groupId, name, pid }, 'component gone at adoption')
    if (!this.restartExited) {
      managed.message = 'its process had ended while the control plane was away'
      return
    }
    this.spawnComponent(managed)
    managed.message = 'restarted: its process had ended while the control plane was away'
  }

  private schedulePoll(): void {
    if (this.pollTimer !== undefined || this.detached) return
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined
      this.pollAdopted().catch((err: unknown) => {
        this.log.error({ err }, 'adopted process poll failed')
      })
    }, this.pollIntervalMs)
  }

  /** Checks adopted processes in `/proc`; keeps polling while any is left. */
  private async pollAdopted(): Promise<void> {
    const adopted: [Managed, Incarnation][] = []
    for (const group of this.groupsById.values()) {
      for (const managed of group.values()) {
        const incarnation = managed.current
        if (incarnation?.adopted === true && !incarnation.gone) adopted.push([managed, incarnation])
      }
    }
    if (adopted.length === 0) return
    await Promise.all(
      adopted.map(async ([managed, incarnation]) => {
        const ticks = incarnation.startTimeTicks
        const alive = ticks !== undefined && (await isProcessAlive(incarnation.pid, ticks))
        if (!alive) this.handleGone(managed, incarnation, null, null)
      }),
    )
    this.schedulePoll()
  }
}

/** Waits for `promise` at most `timeoutMs`; true when it settled in time. */
async function waitWithTimeout(promise: Promise<void>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  try {
    return await Promise.race([promise.then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((v) => typeof v === 'string')
}

/**
 * Parses a pid file and checks its fields other than the spec (see {@link checkSpec}).
 * @returns the record and the raw JSON value, or `undefined` when it is not a valid record
 */
function parsePidFile(
  text: string,
): { record: PidFileRecord; value: Record<string, unknown> } | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // Not JSON: reported by the caller as a corrupt file.
    return undefined
  }
  if (!isRecord(value)) return undefined
  const record = value as unknown as PidFileRecord
  const validRecord =
    (record.pid === null || (Number.isInteger(record.pid) && record.pid > 0)) &&
    (record.startTimeTicks === null || typeof record.startTimeTicks === 'string') &&
    (record.startedAt === null || typeof record.startedAt === 'string') &&
    (record.stopRequestedAt === undefined ||
      record.stopRequestedAt === null ||
      !Number.isNaN(Date.parse(record.stopRequestedAt))) &&
    (record.stopDeadlineAt === undefined ||
      record.stopDeadlineAt === null ||
      !Number.isNaN(Date.parse(record.stopDeadlineAt)))
  return validRecord ? { record, value } : undefined
}

/** `value` as the spec of component `name`, or `undefined` when it is not a valid one. */
function checkSpec(groupId: string, name: string, value: unknown): ComponentSpec | undefined {
  if (!isRecord(value)) return undefined
  const spec = value
  const validSpec =
    spec.name === name &&
    typeof spec.component === 'string' &&
    typeof spec.command === 'string' &&
    Array.isArray(spec.args) &&
    spec.args.every((arg) => typeof arg === 'string') &&
    isStringRecord(spec.env) &&
    typeof spec.cwd === 'string' &&
    typeof spec.logFile === 'string' &&
    typeof spec.stopGracePeriodMs === 'number' &&
    (spec.stopSignal === undefined || stopSignals.includes(spec.stopSignal as string)) &&
    (spec.uid === undefined || typeof spec.uid === 'number') &&
    (spec.gid === undefined || typeof spec.gid === 'number') &&
    (spec.niceness === undefined || typeof spec.niceness === 'number')
  if (!validSpec) return undefined
  try {
    validateComponentSpecs(groupId, [spec as unknown as ComponentSpec])
  } catch {
    // A spec that breaks the rules is treated like an unreadable one.
    return undefined
  }
  return spec as unknown as ComponentSpec
}

/**
 * The spec of a component whose recorded spec cannot be read: only its name, component and
 * stop settings (from the record's clear fields, else from a clear `spec`, else defaults), so it
 * can be observed and stopped. It is never run.
 */
function standInSpec(name: string, value: Record<string, unknown>): ComponentSpec {
  const clear = isRecord(value.spec) ? value.spec : {}
  const pick = (key: 'stopSignal' | 'stopGracePeriodMs'): unknown => value[key] ?? clear[key]
  const signal = pick('stopSignal')
  const grace = pick('stopGracePeriodMs')
  return {
    name,
    component: typeof value.component === 'string' ? value.component : 'unknown',
    command: '/',
    args: [],
    env: {},
    cwd: '/',
    logFile: '/',
    ...(typeof signal === 'string' && stopSignals.includes(signal)
      ? { stopSignal: signal as StopSignal }
      : {}),
    stopGracePeriodMs:
      typeof grace === 'number' && Number.isFinite(grace) && grace >= 0
        ? grace
        : unknownSpecStopGracePeriodMs,
  }
}

/** Writes a pid file atomically (temporary file, then rename), mode 0600. */
function writeRecord(file: string, record: PidFileRecord): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 })
  renameSync(tmp, file)
}

/**
 * A loggable summary of an error that may quote a spec: errors of `spawn()` carry the args
 * (`spawnargs`), Node's argument errors quote the bad value ("Received …"), and a codec's error
 * or its `cause` may quote decrypted text. System errors (with a `syscall`) keep their message,
 * which names only the syscall, a path and the code; any other keeps only its name and code.
 */
function safeError(err: unknown): { name: string; code?: string; message: string } {
  if (!(err instanceof Error)) return { name: typeof err, message: 'non-error thrown' }
  const { code, syscall } = err as NodeJS.ErrnoException
  const summary = {
    name: err.name,
    ...(typeof code === 'string' ? { code } : {}),
  }
  if (typeof syscall === 'string') return { ...summary, message: err.message }
  return { ...summary, message: typeof code === 'string' ? `${err.name} (${code})` : err.name }
}
