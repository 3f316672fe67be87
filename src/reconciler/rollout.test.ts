import { describe, expect, it } from 'vitest'
import { hashComponentSpec, type ComponentSpec } from '../runtime/driver.js'
import { planRollout, type RunningComponent } from './rollout.js'

function spec(name: string, version: string): ComponentSpec {
  return {
    name,
    component: name.replace(/-\d+$/, ''),
    command: '/bin/airflow',
    args: [name],
    env: { VERSION: version },
    cwd: '/',
    logFile: `/logs/${name}.log`,
    stopGracePeriodMs: 1000,
  }
}

/** Names running version `old` (ready unless listed in notReady), the rest absent. */
function world(names: string[], notReady: string[] = [], stopping: string[] = []) {
  const running: RunningComponent[] = names.map((name) => ({
    name,
    specHash: hashComponentSpec(spec(name, 'old')),
    ready: !notReady.includes(name),
    stopping: stopping.includes(name),
  }))
  const runningSpec = (name: string) => (names.includes(name) ? spec(name, 'old') : undefined)
  return { running, runningSpec }
}

const versions = (specs: ComponentSpec[]) =>
  Object.fromEntries(specs.map((s) => [s.name, s.env.VERSION]))

describe('planRollout', () => {
  const desired = ['api-server-1', 'api-server-2', 'scheduler-1', 'scheduler-2', 'triggerer-1'].map(
    (n) => spec(n, 'new'),
  )

  it('replaces one api-server and one scheduler at a time; other kinds at once', () => {
    const { running, runningSpec } = world(desired.map((d) => d.name))
    const step = planRollout(desired, running, runningSpec)
    expect(versions(step.specs)).toEqual({
      'api-server-1': 'new',
      'api-server-2': 'old',
      'scheduler-1': 'new',
      'scheduler-2': 'old',
      'triggerer-1': 'new',
    })
    expect(step.held).toEqual(['api-server-2', 'scheduler-2'])
  })

  it('waits while the replaced one is not ready yet', () => {
    const { running, runningSpec } = world(['api-server-2', 'scheduler-2'])
    running.push(
      {
        name: 'api-server-1',
        specHash: hashComponentSpec(desired[0]!),
        ready: false,
        stopping: false,
      },
      {
        name: 'scheduler-1',
        specHash: hashComponentSpec(desired[2]!),
        ready: true,
        stopping: false,
      },
    )
    const step = planRollout(desired, running, runningSpec)
    expect(step.held).toEqual(['api-server-2'])
    expect(versions(step.specs)['scheduler-2']).toBe('new')
  })

  it('a broken changed component is replaced at once, the ready ones wait', () => {
    const { running, runningSpec } = world(['api-server-1', 'api-server-2'], ['api-server-2'])
    const step = planRollout(desired.slice(0, 2), running, runningSpec)
    expect(versions(step.specs)).toEqual({ 'api-server-1': 'old', 'api-server-2': 'new' })
  })

  it('when none is ready, all are replaced (nothing to keep serving)', () => {
    const { running, runningSpec } = world(
      ['api-server-1', 'api-server-2'],
      ['api-server-1', 'api-server-2'],
    )
    const step = planRollout(desired.slice(0, 2), running, runningSpec)
    expect(step.held).toEqual([])
  })

  it('a single api-server (mw1.micro) is replaced: there is no other', () => {
    const { running, runningSpec } = world(['api-server-1'])
    expect(planRollout([desired[0]!], running, runningSpec).held).toEqual([])
  })

  it('new and stopping components are never held', () => {
    const { running, runningSpec } = world(['api-server-1', 'api-server-3'], [], ['api-server-3'])
    const step = planRollout(desired.slice(0, 2), running, runningSpec)
    expect(step.held).toEqual([])
    expect(versions(step.specs)).toEqual({ 'api-server-1': 'new', 'api-server-2': 'new' })
  })
})
