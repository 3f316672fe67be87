import { describe, expect, it } from 'vitest'
import type { EnvironmentPhase, EnvironmentStatus, VersionChangeStep } from './environment.js'
import { deriveEnvironmentStatus, deriveLastUpdate, type StatusInput } from './status.js'

interface Row {
  phase: EnvironmentPhase
  generation: number
  observed: number
  healthy: boolean
  crashLooping: boolean
  failedGeneration?: number
  expected: EnvironmentStatus
}

const table: Row[] = [
  {
    phase: 'creating',
    generation: 1,
    observed: 0,
    healthy: false,
    crashLooping: false,
    expected: 'CREATING',
  },
  {
    phase: 'creating',
    generation: 1,
    observed: 0,
    healthy: false,
    crashLooping: true,
    expected: 'CREATING',
  },
  {
    phase: 'create-failed',
    generation: 1,
    observed: 0,
    healthy: false,
    crashLooping: false,
    failedGeneration: 1,
    expected: 'CREATE_FAILED',
  },
  {
    phase: 'provisioned',
    generation: 1,
    observed: 1,
    healthy: true,
    crashLooping: false,
    expected: 'AVAILABLE',
  },
  {
    phase: 'provisioned',
    generation: 1,
    observed: 1,
    healthy: false,
    crashLooping: false,
    expected: 'UNAVAILABLE',
  },
  {
    phase: 'provisioned',
    generation: 1,
    observed: 1,
    healthy: true,
    crashLooping: true,
    expected: 'UNAVAILABLE',
  },
  {
    phase: 'provisioned',
    generation: 2,
    observed: 1,
    healthy: true,
    crashLooping: false,
    expected: 'UPDATING',
  },
  {
    phase: 'provisioned',
    generation: 2,
    observed: 1,
    healthy: false,
    crashLooping: true,
    expected: 'UPDATING',
  },
  {
    phase: 'provisioned',
    generation: 2,
    observed: 1,
    healthy: true,
    crashLooping: false,
    failedGeneration: 2,
    expected: 'UPDATE_FAILED',
  },
  {
    phase: 'provisioned',
    generation: 3,
    observed: 1,
    healthy: true,
    crashLooping: false,
    failedGeneration: 2,
    expected: 'UPDATING',
  },
  {
    phase: 'deleting',
    generation: 2,
    observed: 2,
    healthy: true,
    crashLooping: false,
    expected: 'DELETING',
  },
  {
    phase: 'deleted',
    generation: 2,
    observed: 2,
    healthy: false,
    crashLooping: false,
    expected: 'DELETED',
  },
]

function input(row: Row, message?: string): StatusInput {
  return {
    phase: row.phase,
    generation: row.generation,
    observation: {
      observedGeneration: row.observed,
      healthy: row.healthy,
      crashLooping: row.crashLooping,
      failedGeneration: row.failedGeneration,
      failureCode: message ? 'COMPONENT_CRASH_LOOPING' : undefined,
      message,
    },
  }
}

describe('deriveEnvironmentStatus', () => {
  it.each(table)(
    '$phase gen=$generation observed=$observed healthy=$healthy crash=$crashLooping failed=$failedGeneration → $expected',
    (row) => {
      expect(deriveEnvironmentStatus(input(row))).toBe(row.expected)
    },
  )
})

describe('deriveLastUpdate', () => {
  const request = { createdAt: new Date(1_700_000_000_000), source: 'UpdateEnvironment' }

  it('is PENDING while the generation is not yet observed', () => {
    expect(deriveLastUpdate(request, input(table[6]!)).status).toBe('PENDING')
  })

  it('is SUCCESS once converged, without an error', () => {
    const lu = deriveLastUpdate(request, input(table[3]!))
    expect(lu).toEqual({
      status: 'SUCCESS',
      createdAt: request.createdAt,
      source: 'UpdateEnvironment',
    })
  })

  it('is FAILED with the error when the latest generation failed', () => {
    const lu = deriveLastUpdate(request, input(table[8]!, 'broker would not start'))
    expect(lu.status).toBe('FAILED')
    expect(lu.error).toEqual({
      errorCode: 'COMPONENT_CRASH_LOOPING',
      errorMessage: 'broker would not start',
    })
  })

  it('carries the reason while UNAVAILABLE', () => {
    const lu = deriveLastUpdate(request, input(table[5]!, 'scheduler-1 keeps crashing'))
    expect(lu.status).toBe('SUCCESS')
    expect(lu.error?.errorMessage).toBe('scheduler-1 keeps crashing')
  })

  it('reports the worker replacement strategy that ran', () => {
    const lu = deriveLastUpdate(
      { ...request, workerReplacementStrategy: 'GRACEFUL' },
      input(table[3]!),
    )
    expect(lu.workerReplacementStrategy).toBe('GRACEFUL')
  })
})

describe('version changes and maintenance (reference §2 "Typical flows", §10)', () => {
  const updating = {
    observedGeneration: 1,
    healthy: false,
    crashLooping: false,
  }
  const change = (step: VersionChangeStep) => ({
    generation: 2,
    fromVersion: '3.2.1',
    toVersion: '3.3.2',
    step,
    stepStartedAt: new Date(0),
  })
  const status = (observation: StatusInput['observation']) =>
    deriveEnvironmentStatus({ phase: 'provisioned', generation: 2, observation })

  it.each([
    ['preparing', 'UPDATING'],
    ['snapshotting', 'CREATING_SNAPSHOT'],
    ['migrating', 'UPDATING'],
    ['starting', 'UPDATING'],
    ['rolling-back', 'ROLLING_BACK'],
  ] as const)('step %s reads %s', (step, expected) => {
    expect(status({ ...updating, versionChange: change(step) })).toBe(expected)
  })

  it('reads UPDATE_FAILED once the rolled-back generation is marked failed', () => {
    expect(
      status({ ...updating, failedGeneration: 2, failureCode: 'VERSION_CHANGE_ROLLED_BACK' }),
    ).toBe('UPDATE_FAILED')
  })

  it('reads MAINTENANCE during maintenance, healthy or not, and not during an update', () => {
    const maintenance = { description: 'runtime patch', startedAt: new Date(0), toRuntimeKey: 'k' }
    for (const healthy of [true, false]) {
      expect(status({ observedGeneration: 2, healthy, crashLooping: false, maintenance })).toBe(
        'MAINTENANCE',
      )
    }
    expect(status({ ...updating, maintenance })).toBe('UPDATING')
  })
})
