import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { hashComponentSpec } from '../driver.js'
import { runDriverConformance } from '../driver-conformance.js'
import { LocalDriver, type PidFileRecord } from './local-driver.js'
import { parseProcessStat, readProcessStartTime } from './proc.js'

const fixturesDir = fileURLToPath(new URL('../../../test/fixtures/processes/', import.meta.url))
const logger = pino({ level: 'silent' })

runDriverConformance(
  'LocalDriver',
  (runDir) =>
    LocalDriver.open({
      runDir,
      logger,
      restartBackoff: { initialMs: 50, maxMs: 200 },
      crashLoop: { maxRestarts: 3, windowMs: 10_000 },
      stableAfterMs: 1000,
      startingPeriodMs: 200,
      pollIntervalMs: 50,
    }),
  {
    nodePath: process.execPath,
    sleeperScript: path.join(fixturesDir, 'sleeper.mjs'),
    exitNowScript: path.join(fixturesDir, 'exit-now.mjs'),
    async forgeStaleRecord(runDir, groupId, spec, pid) {
      const startTimeTicks = await readProcessStartTime(pid)
      expect(startTimeTicks).toBeDefined()
      const record: PidFileRecord = {
        pid,
        // The pid is right, the start time is not: the pid was reused.
        startTimeTicks: String(Number(startTimeTicks) + 1),
        specHash: hashComponentSpec(spec),
        startedAt: new Date().toISOString(),
        component: spec.component,
        spec,
      }
      await mkdir(path.join(runDir, groupId), { recursive: true })
      await writeFile(path.join(runDir, groupId, `${spec.name}.json`), JSON.stringify(record))
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
