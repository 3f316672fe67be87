/**
 * The conformance suite every {@link Driver} must pass (as Hono's router suite or BullMQ's
 * adapter suite): call {@link runDriverConformance} from a `*.test.ts` file with a factory that
 * opens the driver under test.
 *
 * The suite runs real processes: the Node.js scripts in `test/fixtures/processes/`
 * (`sleeper.mjs`, `exit-now.mjs`). Every process it asks for carries a per-run marker variable,
 * and after each test it checks (through `/proc`) that no process with that marker is left.
 * Waits are conditions polled until a deadline, never fixed sleeps; drivers under test should be
 * given short backoffs and periods so the suite stays fast.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  hashComponentSpec,
  type ComponentExitedEvent,
  type ComponentSpec,
  type ComponentState,
  type Driver,
} from './driver.js'

/** What {@link runDriverConformance} needs to run its processes. */
export interface DriverConformanceFixtures {
  /** Absolute path of the Node.js executable that runs the scripts, usually `process.execPath`. */
  nodePath: string
  /** Absolute path of `test/fixtures/processes/sleeper.mjs`. */
  sleeperScript: string
  /** Absolute path of `test/fixtures/processes/exit-now.mjs`. */
  exitNowScript: string
  /**
   * Deadline of every wait for a condition.
   * @default 10000
   */
  waitTimeoutMs?: number
  /**
   * Makes the driver state in `runDir` claim that component `spec` of group `groupId` runs as
   * `pid`, recorded with a start time that does not match (as after a reboot that reused the
   * pid). `pid` is a live process the driver never started. Omit to skip that test (drivers
   * without pids).
   */
  forgeStaleRecord?: (
    runDir: string,
    groupId: string,
    spec: ComponentSpec,
    pid: number,
  ) => Promise<void>
  /**
   * The driver under test keeps its state free of secrets (e.g. a LocalDriver given a spec
   * codec): then a test checks that no file under `runDir` holds a spec's env value or argument
   * in clear, and that a driver opened later still adopts the process and knows its full spec.
   */
  sealsState?: boolean
}

/** Environment variable carried by every process of one suite run, to find leftovers. */
const runMarkerVariable = 'AIRDOCK_CONFORMANCE_RUN'

/**
 * Declares the conformance suite (vitest `describe`/`it`) for one driver.
 *
 * @param name - label of the suite, e.g. `LocalDriver`
 * @param newDriver - opens a driver whose state lives in `runDir` (created empty by the suite);
 *   called again with the same `runDir` to test adoption after a restart
 * @param fixtures - paths of the fixture scripts and optional driver-specific hooks
 */
export function runDriverConformance(
  name: string,
  newDriver: (runDir: string) => Promise<Driver>,
  fixtures: DriverConformanceFixtures,
): void {
  const waitTimeoutMs = fixtures.waitTimeoutMs ?? 10_000
  const runMarker = randomUUID()
  const drivers: Driver[] = []
  const dirs: string[] = []
  const foreign: ChildProcess[] = []

  /** A fresh folder for one test: `<dir>/run` is the driver's runDir. */
  async function newDir(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'airdock-driver-'))
    dirs.push(dir)
    return dir
  }

  async function open(dir: string): Promise<Driver> {
    const driver = await newDriver(path.join(dir, 'run'))
    drivers.push(driver)
    return driver
  }

  function sleeper(
    dir: string,
    componentName: string,
    env: Record<string, string> = {},
    overrides: Partial<ComponentSpec> = {},
  ): ComponentSpec {
    return {
      name: componentName,
      component: 'sleeper',
      command: fixtures.nodePath,
      args: [fixtures.sleeperScript],
      env: { [runMarkerVariable]: runMarker, ...env },
      cwd: dir,
      logFile: path.join(dir, 'logs', `${componentName}.log`),
      stopGracePeriodMs: 5000,
      ...overrides,
    }
  }

  function exitNow(dir: string, componentName: string): ComponentSpec {
    return {
      ...sleeper(dir, componentName),
      component: 'exit-now',
      args: [fixtures.exitNowScript],
    }
  }

  async function waitFor<T>(
    what: string,
    check: () => T | undefined | false | Promise<T | undefined | false>,
    timeoutMs = waitTimeoutMs,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const value = await check()
      if (value !== undefined && value !== false) return value
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  function stateOf(driver: Driver, groupId: string, componentName: string): ComponentState {
    const state = driver.observe(groupId).find((s) => s.name === componentName)
    if (state === undefined) throw new Error(`component ${componentName} not observed`)
    return state
  }

  async function waitRunning(driver: Driver, groupId: string): Promise<ComponentState[]> {
    return waitFor(`every component of ${groupId} running`, () => {
      const states = driver.observe(groupId)
      return states.length > 0 && states.every((s) => s.phase === 'running') && states
    })
  }

  async function readPidFile(file: string): Promise<number> {
    const text = await waitFor(`${file} written`, async () => {
      const content = await readFile(file, 'utf8').catch(() => '')
      return content.endsWith('\n') && content
    })
    return Number(text.trim())
  }

  describe(`driver conformance: ${name}`, () => {
    // Every test leaves nothing behind: drivers closed with stopProcesses, no marked process.
    afterEach(async () => {
      const errors: unknown[] = []
      for (const driver of drivers.splice(0).reverse()) {
        await driver.close({ stopProcesses: true }).catch((err: unknown) => errors.push(err))
      }
      for (const child of foreign.splice(0)) child.kill('SIGKILL')
      await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
      let leftovers: number[] = []
      try {
        // Shorter than vitest's default hook timeout (10 s), so the report below is reached.
        await waitFor(
          'no process of this test left',
          async () => (await findMarkedProcesses(runMarker)).length === 0,
          5000,
        )
      } catch {
        // Reported below, after the leftovers are killed so later tests start clean.
        leftovers = await findMarkedProcesses(runMarker)
        for (const pid of leftovers) killQuietly(pid)
      }
      expect(errors, 'errors closing drivers').toEqual([])
      expect(leftovers, 'processes left behind').toEqual([])
    })

    it('apply starts every component', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const specs = [sleeper(dir, 'a', { PRINT_ENV: runMarkerVariable }), sleeper(dir, 'b')]
      const states = await driver.apply('g1', specs)
      expect(states.map((s) => s.name)).toEqual(['a', 'b'])
      for (const [i, state] of states.entries()) {
        expect(['starting', 'running']).toContain(state.phase)
        expect(state.pid).toBeGreaterThan(0)
        expect(state.restarts).toBe(0)
        expect(state.component).toBe('sleeper')
        expect(state.specHash).toBe(hashComponentSpec(specs[i]!))
      }
      expect(states[0]!.pid).not.toBe(states[1]!.pid)
      expect(driver.groups()).toContain('g1')
      await waitRunning(driver, 'g1')
      // stdout goes to the log file, and the environment is the spec's.
      await waitFor('log line', async () => {
        const log = await readFile(path.join(dir, 'logs', 'a.log'), 'utf8').catch(() => '')
        return log.includes(`${runMarkerVariable}=${runMarker}`)
      })
    })

    it('apply rejects invalid specs and changes nothing', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      await expect(driver.apply('g1', [sleeper(dir, 'a'), sleeper(dir, 'a')])).rejects.toThrow(
        Error,
      )
      await expect(driver.apply('g1', [sleeper(dir, 'Not_Valid')])).rejects.toThrow(Error)
      await expect(
        driver.apply('g1', [sleeper(dir, 'a', {}, { command: 'node' })]),
      ).rejects.toThrow(Error)
      await expect(driver.apply('../escape', [])).rejects.toThrow(Error)
      for (const niceness of [-1, 20, 1.5]) {
        await expect(driver.apply('g1', [sleeper(dir, 'a', {}, { niceness })])).rejects.toThrow(
          /niceness/,
        )
      }
      expect(driver.observe('g1')).toEqual([])
    })

    it('a command that cannot be started is reported, not thrown', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const events: ComponentExitedEvent[] = []
      driver.on('component:exited', (event) => events.push(event))
      const spec = sleeper(dir, 'a', {}, { command: path.join(dir, 'no-such-program') })
      // Also when a starter would run it at a lower priority.
      await driver.apply('g1', [spec, { ...spec, name: 'b', niceness: 5 }])
      for (const name of ['a', 'b']) {
        const state = await waitFor(`spawn failure of ${name} reported`, () => {
          const current = stateOf(driver, 'g1', name)
          return current.message !== undefined && current.pid === undefined && current
        })
        expect(['exited', 'crash-looping']).toContain(state.phase)
      }
      await waitFor('retried', () => events.filter((e) => e.name === 'b').length >= 2)
    })

    it('calls for one group run one after another', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const childPidFile = path.join(dir, 'child.pid')
      const slow = sleeper(
        dir,
        'a',
        { IGNORE_SIGTERM: '1', SPAWN_CHILD: '1', CHILD_PID_FILE: childPidFile },
        { stopGracePeriodMs: 400 },
      )
      const [before] = await driver.apply('g1', [slow])
      await readPidFile(childPidFile)
      const order: string[] = []
      const stop = driver.apply('g1', []).then(() => order.push('stop'))
      await waitFor('stopping', () => stateOf(driver, 'g1', 'a').phase === 'stopping')
      const start = driver.apply('g1', [sleeper(dir, 'a')]).then((states) => {
        order.push('start')
        return states
      })
      const [after] = await start
      await stop
      expect(order).toEqual(['stop', 'start'])
      expect(after!.pid).not.toBe(before!.pid)
      expect(isAlive(before!.pid!)).toBe(false)
    })

    it('specOf returns a copy of the spec a component runs', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const a = sleeper(dir, 'a', { X: '1' })
      await driver.apply('g1', [a])
      const copy = driver.specOf('g1', 'a')!
      expect(hashComponentSpec(copy)).toBe(hashComponentSpec(a))
      copy.env.X = 'changed'
      expect(driver.specOf('g1', 'a')!.env.X).toBe('1')
      expect(driver.specOf('g1', 'nope')).toBeUndefined()
      expect(driver.specOf('nope', 'a')).toBeUndefined()
    })

    it('re-applying the same specs restarts nothing', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const specs = [sleeper(dir, 'a'), sleeper(dir, 'b')]
      const before = await driver.apply('g1', specs)
      // Same content, new objects with keys in another order.
      const again = specs.map((spec) => Object.fromEntries(Object.entries(spec).reverse()))
      const after = await driver.apply('g1', again as unknown as ComponentSpec[])
      expect(after.map((s) => s.pid)).toEqual(before.map((s) => s.pid))
      expect(after.map((s) => s.restarts)).toEqual([0, 0])
    })

    it('a changed spec restarts only that component', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const before = await driver.apply('g1', [sleeper(dir, 'a'), sleeper(dir, 'b')])
      const after = await driver.apply('g1', [sleeper(dir, 'a'), sleeper(dir, 'b', { X: '2' })])
      expect(after[0]!.pid).toBe(before[0]!.pid)
      expect(after[1]!.pid).toBeGreaterThan(0)
      expect(after[1]!.pid).not.toBe(before[1]!.pid)
      expect(after[1]!.specHash).not.toBe(before[1]!.specHash)
      expect(isAlive(before[1]!.pid!)).toBe(false)
      expect(isAlive(after[1]!.pid!)).toBe(true)
    })

    it('a component left out of desired is stopped', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const before = await driver.apply('g1', [sleeper(dir, 'a'), sleeper(dir, 'b')])
      const after = await driver.apply('g1', [sleeper(dir, 'a')])
      expect(after[0]!.pid).toBe(before[0]!.pid)
      await waitFor('b gone', () => driver.observe('g1').length === 1)
      expect(driver.observe('g1').map((s) => s.name)).toEqual(['a'])
      expect(isAlive(before[1]!.pid!)).toBe(false)
    })

    it('a removed component drains in the background, observed as stopping until it exits', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      // Ignores SIGTERM: like a Celery worker finishing a long task after its warm shutdown.
      const busy = { ...sleeper(dir, 'b', { IGNORE_SIGTERM: '1' }), stopGracePeriodMs: 60_000 }
      await driver.apply('g1', [sleeper(dir, 'a'), busy])
      const [, b] = await waitRunning(driver, 'g1')
      // apply returns while b still runs.
      const after = await driver.apply('g1', [sleeper(dir, 'a')])
      expect(after.map((s) => [s.name, s.phase])).toEqual([
        ['a', 'running'],
        ['b', 'stopping'],
      ])
      expect(isAlive(b!.pid!)).toBe(true)
      // Re-applying keeps it stopping (a stop that has begun is never undone or repeated).
      await driver.apply('g1', [sleeper(dir, 'a')])
      expect(stateOf(driver, 'g1', 'b').phase).toBe('stopping')
      expect(isAlive(b!.pid!)).toBe(true)
      // The caller may cut the drain short.
      await driver.stopGroup('g1', { maxStopGracePeriodMs: 200 })
      expect(isAlive(b!.pid!)).toBe(false)
      expect(driver.observe('g1')).toEqual([])
    })

    it('a capped stop stays capped across a driver restart', async () => {
      const dir = await newDir()
      const busy = { ...sleeper(dir, 'w', { IGNORE_SIGTERM: '1' }), stopGracePeriodMs: 600_000 }
      const first = await open(dir)
      await first.apply('g1', [busy])
      const [w] = await waitRunning(first, 'g1')
      await first.apply('g1', [], { maxStopGracePeriodMs: 1500 })
      await first.close({ stopProcesses: false })
      const second = await open(dir)
      expect(stateOf(second, 'g1', 'w').phase).toBe('stopping')
      // Killed at the capped deadline, not after the spec's 10 minutes.
      await waitFor('killed at the capped deadline', () => !isAlive(w!.pid!))
      await waitFor('forgotten', () => second.observe('g1').length === 0)
    })

    it('a desired component whose name is still stopping starts once the old process is gone', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const busy = { ...sleeper(dir, 'b', { IGNORE_SIGTERM: '1' }), stopGracePeriodMs: 60_000 }
      await driver.apply('g1', [busy])
      const [old] = await waitRunning(driver, 'g1')
      await driver.apply('g1', [])
      const back = driver.apply('g1', [sleeper(dir, 'b')], { maxStopGracePeriodMs: 200 })
      const [b] = await back
      expect(isAlive(old!.pid!)).toBe(false)
      expect(b!.pid).not.toBe(old!.pid)
      expect(isAlive(b!.pid!)).toBe(true)
    })

    it('a stop under way survives a driver restart and is never signalled twice', async () => {
      const dir = await newDir()
      const signalLog = path.join(dir, 'signals')
      const spec = {
        ...sleeper(dir, 'w', { SIGNAL_LOG: signalLog, IGNORE_SIGTERM: '1' }),
        stopGracePeriodMs: 60_000,
      }
      const first = await open(dir)
      const [w] = await first.apply('g1', [spec])
      await waitRunning(first, 'g1')
      await first.apply('g1', [])
      await waitFor('SIGTERM received', async () =>
        (await readFile(signalLog, 'utf8').catch(() => '')).includes('SIGTERM'),
      )
      await first.close({ stopProcesses: false })
      expect(isAlive(w!.pid!)).toBe(true)

      const second = await open(dir)
      expect(second.observe('g1').map((s) => [s.name, s.pid, s.phase])).toEqual([
        ['w', w!.pid, 'stopping'],
      ])
      // Leaving it out again, or asking for the group to stop, sends no second signal.
      await second.apply('g1', [])
      await second.stopGroup('g1', { maxStopGracePeriodMs: 300 })
      expect(isAlive(w!.pid!)).toBe(false)
      expect(await readFile(signalLog, 'utf8')).toBe('SIGTERM\n')
    })

    it('a component that exits is reported and restarted', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const events: ComponentExitedEvent[] = []
      driver.on('component:exited', (event) => events.push(event))
      const [before] = await driver.apply('g1', [sleeper(dir, 'a')])
      await waitRunning(driver, 'g1')
      process.kill(before!.pid!, 'SIGKILL')
      const event = await waitFor('component:exited', () => events.find((e) => e.name === 'a'))
      expect(event).toEqual({ groupId: 'g1', name: 'a', code: null, signal: 'SIGKILL' })
      const after = await waitFor('restart', () => {
        const state = stateOf(driver, 'g1', 'a')
        return state.restarts >= 1 && state.pid !== undefined && state
      })
      expect(after.pid).not.toBe(before!.pid)
      expect(after.lastExitSignal).toBe('SIGKILL')
      expect(isAlive(after.pid!)).toBe(true)
      await waitRunning(driver, 'g1')
    })

    it('a component that keeps exiting is crash-looping and still restarted', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const events: ComponentExitedEvent[] = []
      driver.on('component:exited', (event) => events.push(event))
      await driver.apply('g1', [exitNow(dir, 'a'), sleeper(dir, 'b')])
      const looping = await waitFor('crash-looping', () => {
        const state = stateOf(driver, 'g1', 'a')
        return state.phase === 'crash-looping' && state
      })
      expect(looping.lastExitCode).toBe(3)
      expect(events.filter((e) => e.name === 'a').length).toBeGreaterThanOrEqual(2)
      expect(events.every((e) => e.name === 'a' && e.code === 3)).toBe(true)
      await waitFor('another restart', () => stateOf(driver, 'g1', 'a').restarts > looping.restarts)
      expect(stateOf(driver, 'g1', 'b').restarts).toBe(0)
    })

    it('a crash-looping component is running again once it stays up', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const flag = path.join(dir, 'healthy')
      await driver.apply('g1', [sleeper(dir, 'a', { EXIT_UNLESS_EXISTS: flag })])
      await waitFor('crash-looping', () => stateOf(driver, 'g1', 'a').phase === 'crash-looping')
      await writeFile(flag, 'ok\n')
      const state = await waitFor('running again', () => {
        const current = stateOf(driver, 'g1', 'a')
        return current.phase === 'running' && current
      })
      expect(isAlive(state.pid!)).toBe(true)
    })

    it('stopping signals the main pid only and lets it finish its work', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const marker = path.join(dir, 'stopped')
      const childPidFile = path.join(dir, 'child.pid')
      const spec = sleeper(dir, 'a', {
        TRAP_SIGTERM_MARKER: marker,
        TERM_DELAY_MS: '300',
        SPAWN_CHILD: '1',
        CHILD_PID_FILE: childPidFile,
      })
      const [state] = await driver.apply('g1', [{ ...spec, stopGracePeriodMs: 10_000 }])
      const childPid = await readPidFile(childPidFile)
      expect(isAlive(childPid)).toBe(true)
      await driver.apply('g1', [])
      await waitFor('stopped', () => driver.observe('g1').length === 0)
      expect(await readFile(marker, 'utf8')).toBe('SIGTERM\n')
      // The grandchild never saw SIGTERM: it was SIGKILLed as a leftover of the group.
      expect(existsSync(`${marker}.child`)).toBe(false)
      expect(isAlive(state!.pid!)).toBe(false)
      expect(isAlive(childPid)).toBe(false)
      expect(driver.observe('g1')).toEqual([])
    })

    it('stopping uses the stop signal of the spec', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const marker = path.join(dir, 'stopped')
      const childPidFile = path.join(dir, 'child.pid')
      const spec = sleeper(
        dir,
        'a',
        { TRAP_SIGTERM_MARKER: marker, SPAWN_CHILD: '1', CHILD_PID_FILE: childPidFile },
        { stopSignal: 'SIGINT' },
      )
      await driver.apply('g1', [spec])
      await readPidFile(childPidFile)
      await driver.stopGroup('g1')
      expect(await readFile(marker, 'utf8')).toBe('SIGINT\n')
    })

    it('SIGKILLs the whole process group after the grace period', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const childPidFile = path.join(dir, 'child.pid')
      const spec = sleeper(
        dir,
        'a',
        { IGNORE_SIGTERM: '1', SPAWN_CHILD: '1', CHILD_PID_FILE: childPidFile },
        { stopGracePeriodMs: 300 },
      )
      const [state] = await driver.apply('g1', [spec])
      const childPid = await readPidFile(childPidFile)
      const startedMs = Date.now()
      await driver.stopGroup('g1')
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(250)
      expect(isAlive(state!.pid!)).toBe(false)
      expect(isAlive(childPid)).toBe(false)
      expect(driver.groups()).not.toContain('g1')
    })

    it('runs a component and the processes it forks at the niceness of its spec', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const childPidFile = path.join(dir, 'child.pid')
      const niced = sleeper(
        dir,
        'a',
        { SPAWN_CHILD: '1', CHILD_PID_FILE: childPidFile },
        { niceness: 7 },
      )
      const [a, b] = await driver.apply('g1', [niced, sleeper(dir, 'b')])
      const childPid = await readPidFile(childPidFile)
      // The observed pid is the component's own process (no wrapper left in between).
      expect(runsScript(a!.pid!, fixtures.nodePath, fixtures.sleeperScript)).toBe(true)
      expect(nicenessOf(a!.pid!)).toBe(7)
      expect(nicenessOf(childPid)).toBe(7)
      expect(nicenessOf(b!.pid!)).toBe(0)
      if (existsSync(`/proc/${a!.pid}/autogroup`)) {
        // Linux autogroups share CPU between sessions first: the session is niced too.
        await waitFor('autogroup niced', () => autogroupNicenessOf(a!.pid!) === 7)
        expect(autogroupNicenessOf(b!.pid!)).toBe(0)
      }
      expect(driver.specOf('g1', 'a')?.niceness).toBe(7)
      // Another niceness is another spec: the component runs again, at the new value.
      const [again] = await driver.apply('g1', [{ ...niced, niceness: 3 }, sleeper(dir, 'b')])
      expect(again!.pid).not.toBe(a!.pid)
      // Before its command runs, a pid may still be a starter (such as `nice`) exec'ing it.
      await waitFor('the command runs', () =>
        runsScript(again!.pid!, fixtures.nodePath, fixtures.sleeperScript),
      )
      expect(nicenessOf(again!.pid!)).toBe(3)
    })

    it('stopGroup stops and forgets one group only', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const g = await driver.apply('g1', [sleeper(dir, 'a'), sleeper(dir, 'b')])
      const [h] = await driver.apply('h1', [sleeper(dir, 'c')])
      await driver.stopGroup('g1')
      await driver.stopGroup('never-applied')
      expect(driver.groups()).toEqual(['h1'])
      expect(driver.observe('g1')).toEqual([])
      for (const state of g) expect(isAlive(state.pid!)).toBe(false)
      expect(isAlive(h!.pid!)).toBe(true)
      // Nothing of g1 is left for the next driver either.
      await driver.close({ stopProcesses: false })
      const next = await open(dir)
      expect(next.groups()).toEqual(['h1'])
      expect(stateOf(next, 'h1', 'c').pid).toBe(h!.pid)
    })

    it('close without stopping leaves processes that the next driver adopts and supervises', async () => {
      const dir = await newDir()
      const first = await open(dir)
      const marker = path.join(dir, 'b-stopped')
      await first.apply('g1', [
        sleeper(dir, 'a'),
        sleeper(dir, 'b', { TRAP_SIGTERM_MARKER: marker }),
      ])
      const [a, b] = await waitRunning(first, 'g1')
      await first.close({ stopProcesses: false })
      expect(isAlive(a!.pid!)).toBe(true)
      expect(isAlive(b!.pid!)).toBe(true)

      const second = await open(dir)
      const events: ComponentExitedEvent[] = []
      second.on('component:exited', (event) => events.push(event))
      expect(second.groups()).toEqual(['g1'])
      const adopted = second.observe('g1')
      expect(adopted.map((s) => [s.name, s.pid, s.phase])).toEqual([
        ['a', a!.pid, 'running'],
        ['b', b!.pid, 'running'],
      ])
      expect(adopted.map((s) => s.specHash)).toEqual([a!.specHash, b!.specHash])

      // Re-applying the same specs keeps the adopted processes.
      const same = await second.apply('g1', [
        sleeper(dir, 'a'),
        sleeper(dir, 'b', { TRAP_SIGTERM_MARKER: marker }),
      ])
      expect(same.map((s) => s.pid)).toEqual([a!.pid, b!.pid])

      // An adopted process is supervised: killed from outside, it is restarted.
      process.kill(a!.pid!, 'SIGKILL')
      await waitFor('component:exited', () => events.some((e) => e.name === 'a'))
      const restarted = await waitFor('restart', () => {
        const state = stateOf(second, 'g1', 'a')
        return state.pid !== undefined && state.pid !== a!.pid && state
      })
      expect(restarted.restarts).toBeGreaterThanOrEqual(1)
      expect(isAlive(restarted.pid!)).toBe(true)

      // An adopted process is stopped with its stop signal.
      await second.apply('g1', [sleeper(dir, 'a')])
      await waitFor('b stopped', () => second.observe('g1').length === 1)
      expect(await readFile(marker, 'utf8')).toBe('SIGTERM\n')
      expect(isAlive(b!.pid!)).toBe(false)
    })

    it.runIf(fixtures.forgeStaleRecord !== undefined)(
      'a recorded pid that now belongs to another process is not adopted',
      async () => {
        const dir = await newDir()
        const other = spawn(fixtures.nodePath, [fixtures.sleeperScript], {
          env: { [runMarkerVariable]: runMarker },
          stdio: 'ignore',
        })
        foreign.push(other)
        const otherPid = other.pid!
        const spec = sleeper(dir, 'a')
        await fixtures.forgeStaleRecord!(path.join(dir, 'run'), 'g1', spec, otherPid)
        const driver = await open(dir)
        expect(driver.groups()).toEqual(['g1'])
        const state = await waitFor('started from the recorded spec', () => {
          const current = stateOf(driver, 'g1', 'a')
          return current.pid !== undefined && current
        })
        expect(state.pid).not.toBe(otherPid)
        expect(state.specHash).toBe(hashComponentSpec(spec))
        await driver.stopGroup('g1')
        expect(isAlive(otherPid)).toBe(true)
        expect(isAlive(state.pid!)).toBe(false)
      },
    )

    it.runIf(fixtures.sealsState === true)(
      'the driver state holds no env value or argument in clear, and is still adopted',
      async () => {
        const dir = await newDir()
        const runDir = path.join(dir, 'run')
        const secret = `s3cr3t-${randomUUID()}`
        const spec = sleeper(
          dir,
          'a',
          { SECRET_VALUE: secret },
          { args: [fixtures.sleeperScript, `--password=${secret}`] },
        )
        const first = await open(dir)
        const [a] = await first.apply('g1', [spec])
        await waitRunning(first, 'g1')
        expect(await filesHolding(runDir, secret)).toEqual([])
        await first.close({ stopProcesses: false })
        expect(isAlive(a!.pid!)).toBe(true)

        const second = await open(dir)
        expect(second.observe('g1').map((s) => [s.name, s.pid, s.phase])).toEqual([
          ['a', a!.pid, 'running'],
        ])
        expect(second.specOf('g1', 'a')).toEqual(spec)
        expect(await filesHolding(runDir, secret)).toEqual([])
      },
    )

    it('close with stopProcesses stops every group', async () => {
      const dir = await newDir()
      const driver = await open(dir)
      const states = [
        ...(await driver.apply('g1', [sleeper(dir, 'a')])),
        ...(await driver.apply('h1', [sleeper(dir, 'b'), exitNow(dir, 'c')])),
      ]
      await driver.close({ stopProcesses: true })
      for (const state of states) {
        if (state.pid !== undefined) expect(isAlive(state.pid)).toBe(false)
      }
      await expect(driver.apply('g1', [])).rejects.toThrow(Error)
      const next = await open(dir)
      expect(next.groups()).toEqual([])
    })
  })
}

/** True when `pid` exists and is not a zombie (zombies count as ended). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    // ESRCH: no such process.
    return false
  }
  if (!existsSync('/proc/self/stat')) return true
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = text
      .slice(text.lastIndexOf(')') + 1)
      .trim()
      .split(/\s+/)[0]
    return state !== 'Z' && state !== 'X' && state !== 'x'
  } catch {
    // The process vanished between the two checks.
    return false
  }
}

/**
 * True when `pid` runs `command` (its `/proc/<pid>/cmdline` starts with it) with `script` as an
 * argument: not a starter (such as `nice … command script`) that has not exec'd it yet.
 */
function runsScript(pid: number, command: string, script: string): boolean {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  return argv[0] === command && argv.includes(script)
}

/** Field 19 (`nice`) of `/proc/<pid>/stat`: the process's nice value. */
function nicenessOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (field 2, in parentheses) start at field 3.
  return Number(
    text
      .slice(text.lastIndexOf(')') + 1)
      .trim()
      .split(/\s+/)[19 - 3],
  )
}

/** The nice value of the autogroup of `pid` (`/autogroup-<n> nice <v>`). */
function autogroupNicenessOf(pid: number): number {
  return Number(/nice (-?\d+)/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8'))?.[1])
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

/** Paths of the files under `dir` (at any depth) whose content contains `needle`. */
export async function filesHolding(dir: string, needle: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const found: string[] = []
  for (const entry of entries) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    const content = await readFile(file, 'utf8').catch(() => '')
    if (content.includes(needle)) found.push(file)
  }
  return found
}

/** Pids of live processes whose environment holds this suite run's marker. */
async function findMarkedProcesses(marker: string): Promise<number[]> {
  const needle = `${runMarkerVariable}=${marker}\0`
  const entries = await readdir('/proc').catch(() => [] as string[])
  const found: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '')
    if (environ.includes(needle) && isAlive(Number(entry))) found.push(Number(entry))
  }
  return found
}
