import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { SecretBox } from '../../security/secret-box.js'
import { hashComponentSpec, type ComponentSpec } from '../driver.js'
import { filesHolding, runDriverConformance } from '../driver-conformance.js'
import {
  LocalDriver,
  type LocalDriverOptions,
  type PidFileRecord,
  type SpecCodec,
} from './local-driver.js'
import { parseProcessStat, readProcessStartTime } from './proc.js'

const fixturesDir = fileURLToPath(new URL('../../../test/fixtures/processes/', import.meta.url))
const sleeperScript = path.join(fixturesDir, 'sleeper.mjs')
const logger = pino({ level: 'silent' })

/** Short periods, so the conformance suite stays fast. */
const fastOptions = {
  restartBackoff: { initialMs: 50, maxMs: 200 },
  crashLoop: { maxRestarts: 3, windowMs: 10_000 },
  stableAfterMs: 1000,
  startingPeriodMs: 200,
  pollIntervalMs: 50,
} satisfies Partial<LocalDriverOptions>

/** Folder of the master keys of the codecs below; removed after the file's tests. */
let keyDir: string | undefined
afterAll(async () => {
  if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true })
})

/** A {@link SpecCodec} backed by a SecretBox with a new master key, as the control plane's. */
async function newCodec(): Promise<SpecCodec> {
  keyDir ??= await mkdtemp(path.join(tmpdir(), 'airdock-driver-keys-'))
  const box = await SecretBox.openOrCreate(path.join(keyDir, `${randomUUID()}.key`))
  return { seal: (plaintext) => box.sealJson(plaintext), open: (sealed) => box.openJson(sealed) }
}

let sharedCodec: Promise<SpecCodec> | undefined

/** A pid file claiming `pid` runs `spec`, with a start time that does not match (a reused pid). */
async function staleRecord(spec: ComponentSpec, pid: number): Promise<PidFileRecord> {
  const startTimeTicks = await readProcessStartTime(pid)
  expect(startTimeTicks).toBeDefined()
  return {
    pid,
    // The pid is right, the start time is not: the pid was reused.
    startTimeTicks: String(Number(startTimeTicks) + 1),
    specHash: hashComponentSpec(spec),
    startedAt: new Date().toISOString(),
    component: spec.component,
  }
}

async function writeRecord(
  runDir: string,
  groupId: string,
  name: string,
  record: PidFileRecord,
): Promise<void> {
  await mkdir(path.join(runDir, groupId), { recursive: true })
  await writeFile(path.join(runDir, groupId, `${name}.json`), JSON.stringify(record))
}

runDriverConformance(
  'LocalDriver',
  (runDir) => LocalDriver.open({ runDir, logger, ...fastOptions }),
  {
    nodePath: process.execPath,
    sleeperScript,
    exitNowScript: path.join(fixturesDir, 'exit-now.mjs'),
    async forgeStaleRecord(runDir, groupId, spec, pid) {
      await writeRecord(runDir, groupId, spec.name, { ...(await staleRecord(spec, pid)), spec })
    },
  },
)

runDriverConformance(
  'LocalDriver with a spec codec',
  async (runDir) =>
    LocalDriver.open({
      runDir,
      logger,
      ...fastOptions,
      specCodec: await (sharedCodec ??= newCodec()),
    }),
  {
    nodePath: process.execPath,
    sleeperScript,
    exitNowScript: path.join(fixturesDir, 'exit-now.mjs'),
    sealsState: true,
    async forgeStaleRecord(runDir, groupId, spec, pid) {
      const codec = await (sharedCodec ??= newCodec())
      await writeRecord(runDir, groupId, spec.name, {
        ...(await staleRecord(spec, pid)),
        sealedSpec: codec.seal(JSON.stringify(spec)),
      })
    },
  },
)

describe('parseProcessStat', () => {
  it('counts fields after the last parenthesis', () => {
    const rest = Array.from({ length: 49 }, (_, i) => String(i + 4))
    rest[22 - 4] = '123456'
    const text = `42 (a (weird) ) name) S ${rest.join(' ')}\n`
    expect(parseProcessStat(text)).toEqual({
      state: 'S',
      ppid: 4,
      pgrp: 5,
      startTimeTicks: '123456',
      // utime (field 14) + stime (field 15)
      cpuTicks: 14 + 15,
    })
  })

  it('rejects text that is not a stat line', () => {
    expect(parseProcessStat('')).toBeUndefined()
    expect(parseProcessStat('42 (x) S 1 2')).toBeUndefined()
  })
})

describe('LocalDriver opened with restartExited: false', () => {
  it('starts nothing: a component found dead stays stopped, and stopGroup removes it', async () => {
    const runDir = await mkdtemp(path.join(tmpdir(), 'airdock-driver-stop-only-'))
    let stopOnly: LocalDriver | undefined
    try {
      const first = await LocalDriver.open({ runDir, logger, startingPeriodMs: 100 })
      const [started] = await first.apply('g1', [
        {
          name: 'sleeper-1',
          component: 'sleeper',
          command: process.execPath,
          args: [path.join(fixturesDir, 'sleeper.mjs')],
          env: { PATH: '/usr/bin:/bin' },
          cwd: runDir,
          logFile: path.join(runDir, 'sleeper-1.log'),
          stopGracePeriodMs: 2_000,
        },
      ])
      await first.close({ stopProcesses: false })
      process.kill(started!.pid!, 'SIGKILL')
      await new Promise((r) => setTimeout(r, 200))

      stopOnly = await LocalDriver.open({ runDir, logger, restartExited: false })
      await new Promise((r) => setTimeout(r, 500))
      const [state] = stopOnly.observe('g1')
      expect(state?.pid === undefined || state.pid === started!.pid).toBe(true)
      expect(state?.phase).not.toBe('running')
      await stopOnly.stopGroup('g1')
      expect(stopOnly.groups()).toEqual([])
    } finally {
      // Also on failure: leave no process behind.
      await stopOnly?.close({ stopProcesses: true })
      await rm(runDir, { recursive: true, force: true })
    }
  })
})

describe('LocalDriver spec sealing', () => {
  const drivers: LocalDriver[] = []
  let dir: string
  let runDir: string
  let secret: string
  /** Everything the drivers of one test logged, as text. */
  let logged: string

  afterEach(async () => {
    // Also on failure: leave no process behind.
    for (const driver of drivers.splice(0).reverse()) await driver.close({ stopProcesses: true })
    // A test that failed before a second driver adopted its process (closing a closed driver
    // stops nothing): the test's processes are the ones whose environment holds its secret.
    for (const pid of await processesWithSecret()) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }
    await rm(dir, { recursive: true, force: true })
  })

  async function processesWithSecret(): Promise<number[]> {
    const found: number[] = []
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
      const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '')
      if (environ.includes(`SECRET_VALUE=${secret}\0`)) found.push(Number(entry))
    }
    return found
  }

  async function setUp(): Promise<void> {
    dir = await mkdtemp(path.join(tmpdir(), 'airdock-driver-sealing-'))
    runDir = path.join(dir, 'run')
    secret = `s3cr3t-${randomUUID()}`
    logged = ''
  }

  /** Opens a driver on `runDir` that logs everything into `logged`. */
  async function open(specCodec?: SpecCodec): Promise<LocalDriver> {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logged += chunk.toString('utf8')
        callback()
      },
    })
    const driver = await LocalDriver.open({
      runDir,
      logger: pino({ level: 'trace' }, sink),
      ...fastOptions,
      ...(specCodec !== undefined ? { specCodec } : {}),
    })
    drivers.push(driver)
    return driver
  }

  /** A sleeper whose env and args hold the secret. */
  function secretSpec(overrides: Partial<ComponentSpec> = {}): ComponentSpec {
    return {
      name: 'a',
      component: 'sleeper',
      command: process.execPath,
      args: [sleeperScript, `--password=${secret}`],
      env: { PATH: '/usr/bin:/bin', SECRET_VALUE: secret },
      cwd: dir,
      logFile: path.join(dir, 'logs', 'a.log'),
      stopGracePeriodMs: 5000,
      ...overrides,
    }
  }

  async function pidFile(): Promise<Record<string, unknown>> {
    return JSON.parse(await readFile(path.join(runDir, 'g1', 'a.json'), 'utf8')) as Record<
      string,
      unknown
    >
  }

  /** Files under `runDir` that contain the secret. */
  async function waitFor(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Starts the secret spec with a driver, then closes that driver leaving the process running. */
  async function startAndLeave(specCodec?: SpecCodec, spec = secretSpec()): Promise<number> {
    const first = await open(specCodec)
    const [state] = await first.apply('g1', [spec])
    const pid = state!.pid!
    // Its signal handlers are in place once it says so.
    await waitFor('sleeper ready', async () =>
      (await readFile(spec.logFile, 'utf8').catch(() => '')).includes(`sleeper ${pid} started`),
    )
    await first.close({ stopProcesses: false })
    return pid
  }

  it('seals the spec in the pid file; the same codec adopts it with its full spec', async () => {
    await setUp()
    const codec = await newCodec()
    const pid = await startAndLeave(codec)
    const record = await pidFile()
    expect(record.spec).toBeUndefined()
    expect(typeof record.sealedSpec).toBe('string')
    expect(record).toMatchObject({ pid, specHash: hashComponentSpec(secretSpec()) })
    expect(record.stopGracePeriodMs).toBe(5000)
    expect(await filesHolding(runDir, secret)).toEqual([])

    const second = await open(codec)
    expect(second.observe('g1').map((s) => [s.pid, s.phase])).toEqual([[pid, 'running']])
    expect(second.specOf('g1', 'a')).toEqual(secretSpec())
    expect(await filesHolding(runDir, secret)).toEqual([])
    expect(logged).not.toContain(secret)
  })

  it('adopts a pid file written in clear by an older version, without a codec', async () => {
    await setUp()
    const pid = await startAndLeave()
    // Exactly what older versions wrote: the spec in clear and no stop settings.
    const { stopGracePeriodMs: _grace, ...old } = await pidFile()
    expect(old.spec).toEqual(secretSpec())
    await writeFile(path.join(runDir, 'g1', 'a.json'), JSON.stringify(old))

    const second = await open()
    expect(second.observe('g1').map((s) => [s.pid, s.phase])).toEqual([[pid, 'running']])
    expect(second.specOf('g1', 'a')).toEqual(secretSpec())
  })

  it('adopts a clear-text pid file with a codec, and seals it at once', async () => {
    await setUp()
    const pid = await startAndLeave()
    expect(await filesHolding(runDir, secret)).not.toEqual([])

    const codec = await newCodec()
    const second = await open(codec)
    expect(second.observe('g1').map((s) => [s.pid, s.phase])).toEqual([[pid, 'running']])
    expect(second.specOf('g1', 'a')).toEqual(secretSpec())
    expect(await filesHolding(runDir, secret)).toEqual([])
    expect((await pidFile()).pid).toBe(pid)

    // And the sealed file is adopted again by the next driver.
    await second.close({ stopProcesses: false })
    const third = await open(codec)
    expect(third.observe('g1').map((s) => [s.pid, s.phase])).toEqual([[pid, 'running']])
  })

  it.each([
    ['another key', true],
    ['no codec', false],
  ])(
    'a sealed spec that cannot be opened (%s) stops its process with the recorded stop signal',
    async (_label, withCodec) => {
      await setUp()
      const marker = path.join(dir, 'stopped')
      const spec = secretSpec({
        env: { PATH: '/usr/bin:/bin', SECRET_VALUE: secret, TRAP_SIGTERM_MARKER: marker },
        stopSignal: 'SIGINT',
      })
      const pid = await startAndLeave(await newCodec(), spec)

      const second = await open(withCodec ? await newCodec() : undefined)
      expect(logged).toContain('pid file spec unreadable')
      expect(second.specOf('g1', 'a')).toBeUndefined()
      // The component is known while it stops, so an apply of the same name waits for it.
      const [again] = await second.apply('g1', [spec])
      expect(await readFile(marker, 'utf8')).toBe('SIGINT\n')
      expect(again!.pid).not.toBe(pid)
      expect(isGone(pid)).toBe(true)
      expect(second.specOf('g1', 'a')).toEqual(spec)
      expect(logged).not.toContain(secret)
    },
  )

  it('a sealed spec that cannot be opened and whose process is gone is forgotten', async () => {
    await setUp()
    const pid = await startAndLeave(await newCodec())
    process.kill(pid, 'SIGKILL')
    await waitFor('process gone', () => isGone(pid))

    const second = await open(await newCodec())
    await waitFor('forgotten', () => second.observe('g1').length === 0)
    expect(await readdir(path.join(runDir, 'g1'))).toEqual([])
  })

  it('never logs a spec env value or argument, also when the spawn fails', async () => {
    await setUp()
    const driver = await open(await newCodec())
    await driver.apply('g1', [
      secretSpec(),
      secretSpec({ name: 'b', command: path.join(dir, 'no-such-program') }),
    ])
    await waitFor('spawn failure logged', () => logged.includes('component spawn failed'))
    await driver.stopGroup('g1')
    expect(logged).toContain('no-such-program')
    expect(logged).not.toContain(secret)
  })
})

/** True when `pid` no longer runs (gone, or a zombie waiting to be reaped). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return true
  }
  try {
    return /\) [ZXx] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}
