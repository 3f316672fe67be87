import { describe, expect, it } from 'vitest'
import { planWorkers, workerIndex, type ObservedWorker } from './worker-plan.js'

const up = (index: number, phase: ObservedWorker['phase'] = 'running'): ObservedWorker => ({
  index,
  phase,
  upToDate: true,
})
const old = (index: number): ObservedWorker => ({ index, phase: 'running', upToDate: false })

describe('planWorkers', () => {
  it.each<[string, ObservedWorker[], number, number[], number[]]>([
    ['first start', [], 1, [1], []],
    ['steady state', [up(1), up(2)], 2, [1, 2], []],
    ['scale-out adds the next indices', [up(1)], 3, [1, 2, 3], []],
    ['scale-in leaves out the highest indices', [up(1), up(2), up(3)], 1, [1], []],
    [
      'a draining worker is not capacity and its index is not reused',
      [up(1), up(2, 'stopping')],
      2,
      [1, 3],
      [],
    ],
    [
      'crash-looping workers still count (the driver restarts them)',
      [up(1, 'crash-looping')],
      1,
      [1],
      [],
    ],
    ['out-of-date workers are replaced by new indices', [old(1), old(2)], 2, [3, 4], [1, 2]],
    ['replacement and scale-out together', [old(1), up(2)], 3, [2, 3, 4], [1]],
    ['gaps are kept', [up(2), up(5)], 2, [2, 5], []],
  ])('%s', (_label, observed, desired, indices, replaced) => {
    expect(planWorkers(observed, desired)).toEqual({ indices, replaced })
  })
})

describe('workerIndex', () => {
  it('reads worker names only', () => {
    expect(workerIndex('worker-12')).toBe(12)
    expect(workerIndex('worker-')).toBeUndefined()
    expect(workerIndex('scheduler-1')).toBeUndefined()
  })
})
