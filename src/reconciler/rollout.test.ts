import { describe, expect, it } from 'vitest'
import { hashComponentSpec, type ComponentPhase, type ComponentSpec } from '../runtime/driver.js'
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

/** A running component: `old` or `new` spec, phase, ready. */
function runs(
  name: string,
  version = 'old',
  phase: ComponentPhase = 'running',
  ready = phase === 'running',
): RunningComponent {
  return {
    name,
    component: name.replace(/-\d+$/, ''),
    specHash: hashComponentSpec(spec(name, version)),
    phase,
    ready,
  }
}

const runningSpec = (running: RunningComponent[]) => (name: string) => {
  const now = running.find((r) => r.name === name)
  if (now === undefined) return undefined
  return hashComponentSpec(spec(name, 'old')) === now.specHash
    ? spec(name, 'old')
    : spec(name, 'new')
}

function plan(desiredNames: string[], running: RunningComponent[]) {
  const step = planRollout(
    desiredNames.map((n) => spec(n, 'new')),
    running,
    runningSpec(running),
  )
  return {
    held: step.held,
    versions: Object.fromEntries(step.specs.map((s) => [s.name, s.env.VERSION])),
  }
}

describe('planRollout', () => {
  it('replaces one api-server and one scheduler at a time; other kinds at once', () => {
    const names = ['api-server-1', 'api-server-2', 'scheduler-1', 'scheduler-2', 'triggerer-1']
    expect(
      plan(
        names,
        names.map((n) => runs(n)),
      ),
    ).toEqual({
      held: ['api-server-2', 'scheduler-2'],
      versions: {
        'api-server-1': 'new',
        'api-server-2': 'old',
        'scheduler-1': 'new',
        'scheduler-2': 'old',
        'triggerer-1': 'new',
      },
    })
  })

  it('the next one waits while the replaced one starts or is not ready yet', () => {
    for (const replaced of [
      runs('api-server-1', 'new', 'starting'),
      runs('api-server-1', 'new', 'running', false),
    ]) {
      expect(plan(['api-server-1', 'api-server-2'], [replaced, runs('api-server-2')]).held).toEqual(
        ['api-server-2'],
      )
    }
    // Once it serves, the next one goes.
    expect(
      plan(['api-server-1', 'api-server-2'], [runs('api-server-1', 'new'), runs('api-server-2')])
        .held,
    ).toEqual([])
  })

  it('a failed health probe on the serving one only delays: it is never counted as broken', () => {
    const running = [
      runs('api-server-1', 'new', 'starting'),
      runs('api-server-2', 'old', 'running', false),
    ]
    expect(plan(['api-server-1', 'api-server-2'], running).versions['api-server-2']).toBe('old')
  })

  it('a broken changed component is replaced at once, the serving ones wait', () => {
    const running = [runs('api-server-1'), runs('api-server-2', 'old', 'crash-looping')]
    expect(plan(['api-server-1', 'api-server-2'], running).versions).toEqual({
      'api-server-1': 'old',
      'api-server-2': 'new',
    })
  })

  it('when every one is broken, all are replaced (nothing to keep serving)', () => {
    const running = [
      runs('api-server-1', 'old', 'exited'),
      runs('api-server-2', 'old', 'crash-looping'),
    ]
    expect(plan(['api-server-1', 'api-server-2'], running).held).toEqual([])
  })

  it('a single api-server (mw1.micro) is replaced: there is no other', () => {
    expect(plan(['api-server-1'], [runs('api-server-1')]).held).toEqual([])
  })

  it('scaling goes first: nothing rolls while one is being added, removed or stopped', () => {
    // Scale-out: api-server-3 is new.
    expect(
      plan(
        ['api-server-1', 'api-server-2', 'api-server-3'],
        [runs('api-server-1'), runs('api-server-2')],
      ).held,
    ).toEqual(['api-server-1', 'api-server-2'])
    // Scale-in: api-server-2 is about to be removed.
    expect(plan(['api-server-1'], [runs('api-server-1'), runs('api-server-2')]).held).toEqual([
      'api-server-1',
    ])
    // ... and while it is stopping.
    expect(
      plan(['api-server-1'], [runs('api-server-1'), runs('api-server-2', 'old', 'stopping')]).held,
    ).toEqual(['api-server-1'])
  })
})
