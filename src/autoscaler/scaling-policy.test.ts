import { describe, expect, it } from 'vitest'
import { decideWebservers, decideWorkers } from './scaling-policy.js'

const IDLE_MS = 120_000
const NOW = 1_000_000

describe('decideWorkers', () => {
  // backlog, min, max, tasks/worker, current, idle for (ms, undefined = busy until now) → desired, idle timer kept
  const table: [
    string,
    number,
    number,
    number,
    number,
    number,
    number | undefined,
    number,
    boolean,
  ][] = [
    ['no backlog, at min, just went idle', 0, 1, 10, 5, 1, undefined, 1, true],
    ['one task needs one worker', 1, 1, 10, 5, 1, undefined, 1, false],
    ['a full worker needs no second one', 5, 1, 10, 5, 1, undefined, 1, false],
    ['one more task than slots scales out', 6, 1, 10, 5, 1, undefined, 2, false],
    ['a burst scales out in one step', 23, 1, 10, 5, 1, undefined, 5, false],
    ['scale-out stops at MaxWorkers', 500, 1, 10, 5, 1, undefined, 10, false],
    ['MinWorkers is a floor', 0, 3, 10, 5, 3, undefined, 3, true],
    ['tasks per worker from the class (mw1.large: 20)', 41, 1, 10, 20, 1, undefined, 3, false],
    ['busy: never scales in while tasks run', 1, 1, 10, 5, 4, undefined, 4, false],
    ['idle shorter than the period: keeps the count', 0, 1, 10, 5, 4, IDLE_MS - 1, 4, true],
    ['idle for the whole period: back to MinWorkers', 0, 1, 10, 5, 4, IDLE_MS, 1, true],
    ['idle for long: MinWorkers 2', 0, 2, 10, 5, 4, 10 * IDLE_MS, 2, true],
    [
      'an update lowered MaxWorkers below the count: clamped at once',
      12,
      1,
      2,
      5,
      4,
      undefined,
      2,
      false,
    ],
    ['an update raised MinWorkers above the count', 0, 5, 10, 5, 2, 1000, 5, true],
    ['a new task during the idle period resets it', 2, 1, 10, 5, 4, IDLE_MS - 5, 4, false],
  ]
  it.each(table)('%s', (_label, backlog, min, max, tpw, current, idleForMs, desired, idle) => {
    const decision = decideWorkers({
      backlog,
      minWorkers: min,
      maxWorkers: max,
      tasksPerWorker: tpw,
      currentDesired: current,
      idleSinceMs: idleForMs === undefined ? undefined : NOW - idleForMs,
      nowMs: NOW,
      scaleInIdleMs: IDLE_MS,
    })
    expect(decision.desiredWorkers).toBe(desired)
    expect(decision.idleSinceMs !== undefined).toBe(idle)
  })

  it('the idle timer starts at the first idle sample and is carried forward', () => {
    const first = decideWorkers({
      backlog: 0,
      minWorkers: 1,
      maxWorkers: 5,
      tasksPerWorker: 5,
      currentDesired: 3,
      nowMs: NOW,
      scaleInIdleMs: IDLE_MS,
    })
    expect(first).toEqual({ desiredWorkers: 3, idleSinceMs: NOW })
    const later = decideWorkers({
      backlog: 0,
      minWorkers: 1,
      maxWorkers: 5,
      tasksPerWorker: 5,
      currentDesired: 3,
      idleSinceMs: first.idleSinceMs,
      nowMs: NOW + IDLE_MS,
      scaleInIdleMs: IDLE_MS,
    })
    expect(later).toEqual({ desiredWorkers: 1, idleSinceMs: NOW })
  })
})

describe('decideWebservers', () => {
  const COOL_MS = 60_000
  // min, max, current, running, cpu %, connections, low for (ms) → desired, low timer kept
  const table: [
    string,
    number,
    number,
    number,
    number,
    number,
    number,
    number | undefined,
    number,
    boolean,
  ][] = [
    ['quiet at min stays', 2, 5, 2, 2, 5, 2, undefined, 2, false],
    ['more than 15 connections per server scales out', 2, 5, 2, 2, 5, 31, undefined, 3, false],
    ['exactly 15 per server does not', 2, 5, 2, 2, 5, 30, undefined, 2, false],
    ['many connections jump to what they need', 2, 5, 2, 2, 5, 70, undefined, 5, false],
    ['CPU above 70 % scales out by one', 2, 5, 2, 2, 85, 3, undefined, 3, false],
    ['scale-out stops at MaxWebservers', 2, 3, 3, 3, 95, 100, undefined, 3, false],
    ['low load starts the cool-down', 2, 5, 4, 4, 5, 4, undefined, 4, true],
    ['low load during the cool-down keeps the count', 2, 5, 4, 4, 5, 4, COOL_MS - 1, 4, true],
    ['low load for the cool-down removes one', 2, 5, 4, 4, 5, 4, COOL_MS, 3, true],
    ['never below MinWebservers', 2, 5, 2, 2, 0, 0, 10 * COOL_MS, 2, false],
    [
      'load that one server fewer could not take keeps the count',
      2,
      5,
      3,
      3,
      30,
      20,
      COOL_MS,
      3,
      false,
    ],
    ['an update lowering MaxWebservers clamps', 2, 2, 4, 4, 5, 4, undefined, 2, false],
  ]
  it.each(table)('%s', (_label, min, max, current, running, cpu, conns, lowForMs, desired, low) => {
    const decision = decideWebservers({
      minWebservers: min,
      maxWebservers: max,
      currentDesired: current,
      running,
      cpuPercent: cpu,
      activeConnections: conns,
      lowLoadSinceMs: lowForMs === undefined ? undefined : NOW - lowForMs,
      nowMs: NOW,
      scaleInCooldownMs: COOL_MS,
    })
    expect(decision.desiredWebservers).toBe(desired)
    expect(decision.lowLoadSinceMs !== undefined).toBe(low)
  })
})
