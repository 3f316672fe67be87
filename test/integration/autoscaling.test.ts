/**
 * Autoscaling and high availability on real Airflow with real Celery workers (one mw1.small
 * environment shared by the tests of this file, MinWorkers 1, MaxWorkers 3, 5 tasks per worker):
 *
 * - a burst of tasks scales the workers 1 → 3 and, after the idle period, back to 1, with every
 *   task instance succeeding and the added workers having run tasks;
 * - a scale-in that starts while long tasks run on the workers being removed (MaxWorkers lowered
 *   by UpdateEnvironment) drains them: every task finishes, nothing else restarts;
 * - a configuration update restarts api-servers and schedulers one at a time (the gateway answers
 *   throughout); GRACEFUL worker replacement lets a running task finish; FORCED
 *   stops the old worker at once and Airflow retries the interrupted task;
 * - SIGKILL on a scheduler and on a web server while DAG runs are in flight: every run succeeds
 *   and the gateway answers every request;
 * - Schedulers 2 → 3 → 2 starts and stops one scheduler, the others keep running;
 * - more than 15 connections per web server scale the web servers out, and back in once they close.
 *
 * The idle period and the web server cool-down are shortened by settings; the policies are the
 * same as with MWAA's periods (see `src/autoscaler/scaling-policy.test.ts`).
 */
import { copyFile, mkdir, readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { componentLogFile, environmentLayout } from '../../src/airflow/components.js'
import {
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'
import { environmentClient } from '../support/mwaa-client.js'

const NAME = 'autoscaling'
const IDLE_MS = 15_000
let t: TestControlPlane
let id: string

const client = environmentClient(() => t.cp.endpoint, NAME)
const { api, environment, waitForStatus } = client

/** airdock's status extension (what `airdock status` prints). */
async function status(): Promise<any> {
  return (await api('GET', `/airdock/v1/environments/${NAME}`)).json
}

/**
 * Calls the Airflow REST API through InvokeRestApi. No retry: updates restart the api-servers
 * one at a time, so the REST API must answer throughout.
 */
async function airflow(
  method: string,
  apiPath: string,
  body?: unknown,
  query?: Record<string, unknown>,
): Promise<any> {
  const r = await client.invokeRestApi(method, apiPath, body, query)
  if (r.status !== 200) throw new Error(`${method} ${apiPath}: ${JSON.stringify(r.json)}`)
  return r.json
}

/** Polls the gateway every 250 ms while `during` runs; returns how many answers were not 200. */
async function gatewayFailuresDuring(
  during: () => Promise<void>,
): Promise<{ sent: number; failed: number }> {
  const gatewayPort = Number((await environment()).WebserverUrl.split(':')[1])
  let done = false
  let sent = 0
  let failed = 0
  const poller = (async () => {
    while (!done) {
      sent++
      const res = await fetch(`http://127.0.0.1:${gatewayPort}/api/v2/monitor/health`).catch(
        () => undefined,
      )
      if (res?.status !== 200) failed++
      await res?.arrayBuffer()
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  })()
  try {
    await during()
  } finally {
    done = true
    await poller
  }
  return { sent, failed }
}

async function trigger(dagId: string, runId: string, conf: Record<string, unknown>): Promise<void> {
  await airflow('POST', `/dags/${dagId}/dagRuns`, { logical_date: null, dag_run_id: runId, conf })
}

async function runState(dagId: string, runId: string): Promise<string> {
  return (await airflow('GET', `/dags/${dagId}/dagRuns/${runId}`)).state
}

async function waitForRun(dagId: string, runId: string, timeoutMs = 300_000): Promise<void> {
  await waitFor(
    `${dagId} ${runId} success`,
    async () => {
      const state = await runState(dagId, runId)
      if (state === 'failed') throw new Error(`${dagId} ${runId} failed`)
      return state === 'success'
    },
    timeoutMs,
    2_000,
  )
}

async function taskInstances(dagId: string, runId: string): Promise<any[]> {
  const r = await airflow('GET', `/dags/${dagId}/dagRuns/${runId}/taskInstances`, undefined, {
    limit: 1000,
  })
  return r.task_instances
}

function workerStates(): { name: string; phase: string; pid?: number }[] {
  return t.cp.driver.observe(id).filter((c) => c.component === 'worker')
}

/** Records the most workers seen running while `during` runs. */
async function watchWorkers<T>(during: () => Promise<T>): Promise<{ result: T; max: number }> {
  let max = 0
  let done = false
  const sampler = (async () => {
    while (!done) {
      max = Math.max(max, workerStates().filter((w) => w.phase === 'running').length)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  })()
  try {
    return { result: await during(), max }
  } finally {
    done = true
    await sampler
  }
}

beforeAll(async () => {
  t = await startTestControlPlane(
    await testEnvironmentVariables({
      AIRDOCK_WORKER_SCALE_IN_IDLE_MS: String(IDLE_MS),
      AIRDOCK_AUTOSCALE_INTERVAL_MS: '1000',
      AIRDOCK_WEBSERVER_SCALE_IN_COOLDOWN_MS: '5000',
    }),
  )
  const dags = path.join(t.settings.dataDir, 'buckets', 'scaling-bucket', 'dags')
  await mkdir(dags, { recursive: true })
  await copyFile(path.join(repoRoot, 'test/fixtures/dags/burst.py'), path.join(dags, 'burst.py'))
  for (const file of ['slow_pipeline.py', 'interruptible.py']) {
    await copyFile(path.join(repoRoot, 'test/fixtures/dags', file), path.join(dags, file))
  }
  const created = await api('PUT', `/environments/${NAME}`, {
    ExecutionRoleArn: 'arn:aws:iam::000000000000:role/airflow-execution',
    SourceBucketArn: 'arn:aws:s3:::scaling-bucket',
    DagS3Path: 'dags',
    NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
    EnvironmentClass: 'mw1.small',
    MinWorkers: 1,
    MaxWorkers: 3,
    MaxWebservers: 3,
  })
  expect(created.status).toBe(200)
  const env = await waitForStatus('AVAILABLE')
  id = env.WebserverUrl.split('.')[0]
  for (const dagId of ['burst', 'slow_pipeline', 'interruptible']) {
    await waitFor(
      `${dagId} listed`,
      async () => (await airflow('GET', `/dags/${dagId}`).catch(() => undefined)) !== undefined,
      90_000,
    )
    await airflow('PATCH', `/dags/${dagId}`, { is_paused: false })
  }
})

afterAll(async () => {
  await t?.destroy()
})

describe('worker autoscaling and high availability (mw1.small, real Celery workers)', () => {
  it('a burst scales 1 → MaxWorkers and back to MinWorkers after the idle period; every task succeeds', async () => {
    expect(workerStates().map((w) => w.name)).toEqual(['worker-1'])
    const { max } = await watchWorkers(async () => {
      // 15 tasks of 20 s = 3 workers of 5 slots.
      await trigger('burst', 'burst-1', { tasks: 15, seconds: 20 })
      const scaled = await waitFor(
        'desired workers 3',
        async () => ((await status()).workers.desired === 3 ? await status() : undefined),
        60_000,
        500,
      )
      expect(scaled.scaling.backlog).toBeGreaterThan(5)
      await waitForRun('burst', 'burst-1')
    })
    expect(max).toBe(3)
    const tis = await taskInstances('burst', 'burst-1')
    expect(tis.filter((ti) => ti.task_id === 'work')).toHaveLength(15)
    for (const ti of tis) {
      expect(ti.state, ti.task_id).toBe('success')
      expect(ti.try_number, ti.task_id).toBe(1)
    }
    // The added workers ran tasks (Celery logs each task it receives).
    const layout = environmentLayout(path.join(t.settings.dataDir, 'environments'), id)
    for (const name of ['worker-2', 'worker-3']) {
      const log = await readFile(componentLogFile(layout, name), 'utf8')
      expect(log, name).toMatch(/Task [\w.]+\[[0-9a-f-]+\] received/)
    }
    // Not before the idle period: still 3 right after the run.
    expect((await status()).workers.desired).toBe(3)
    const idle = await waitFor(
      'back to MinWorkers',
      async () => {
        const s = await status()
        return s.workers.desired === 1 && s.workers.actual === 1 && s.workers.draining === 0
          ? s
          : undefined
      },
      IDLE_MS + 90_000,
      500,
    )
    expect(idle.scaling.backlog).toBe(0)
    expect(workerStates().map((w) => w.name)).toEqual(['worker-1'])
    expect((await environment()).Status).toBe('AVAILABLE')
  })

  it('a scale-in that starts while long tasks run lets them finish, and restarts nothing else', async () => {
    // 11 tasks of 45 s: 3 workers, all busy.
    await trigger('burst', 'long-1', { tasks: 11, seconds: 45 })
    await waitFor(
      '3 workers running tasks',
      async () => {
        const running = (await taskInstances('burst', 'long-1')).filter(
          (ti) => ti.task_id === 'work' && ti.state === 'running',
        )
        return (
          running.length === 11 && workerStates().filter((w) => w.phase === 'running').length === 3
        )
      },
      120_000,
      1_000,
    )
    const others = new Map(
      t.cp.driver
        .observe(id)
        .filter((c) => c.component !== 'worker')
        .map((c) => [c.name, c.pid]),
    )
    const r = await api('PATCH', `/environments/${NAME}`, { MaxWorkers: 1 })
    expect(r.status).toBe(200)
    // The two extra workers drain: stopped taking work, still finishing their tasks.
    const draining = await waitFor(
      'two workers draining',
      async () => ((await status()).workers.draining === 2 ? await status() : undefined),
      30_000,
      250,
    )
    expect(draining.workers.desired).toBe(1)
    const runningNow = (await taskInstances('burst', 'long-1')).filter(
      (ti) => ti.state === 'running',
    )
    expect(runningNow.length).toBeGreaterThan(5)
    await waitForStatus('AVAILABLE', 60_000)
    await waitForRun('burst', 'long-1')
    for (const ti of await taskInstances('burst', 'long-1')) {
      expect(ti.state, `${ti.task_id}[${ti.map_index}]`).toBe('success')
      expect(ti.try_number, `${ti.task_id}[${ti.map_index}]`).toBe(1)
    }
    await waitFor('drained workers gone', () => workerStates().length === 1, 60_000, 500)
    // Nothing but workers was restarted by the MaxWorkers change.
    for (const [name, pid] of others) {
      expect(t.cp.driver.observe(id).find((c) => c.name === name)?.pid, name).toBe(pid)
    }
    expect((await api('PATCH', `/environments/${NAME}`, { MaxWorkers: 3 })).status).toBe(200)
    await waitForStatus('AVAILABLE', 60_000)
  })

  it('GRACEFUL replacement on a configuration update lets the running task finish', async () => {
    await trigger('slow_pipeline', 'graceful-1', {})
    const [old] = await waitFor(
      'the slow task running',
      async () => {
        const tis = await taskInstances('slow_pipeline', 'graceful-1')
        return tis.some((ti) => ti.task_id === 'wait' && ti.state === 'running') && workerStates()
      },
      120_000,
      500,
    )
    const apiServerPids = t.cp.driver
      .observe(id)
      .filter((c) => c.component === 'api-server')
      .map((c) => c.pid)
    // Every component's configuration changes: api-servers and schedulers restart one at a time,
    // so the web endpoint answers throughout.
    const served = await gatewayFailuresDuring(async () => {
      const r = await api('PATCH', `/environments/${NAME}`, {
        AirflowConfigurationOptions: { 'core.default_task_retries': '0' },
        WorkerReplacementStrategy: 'GRACEFUL',
      })
      expect(r.status).toBe(200)
      // A new worker starts at once; the old one drains.
      await waitFor(
        'old worker draining next to its replacement',
        () => {
          const workers = workerStates()
          const oldNow = workers.find((w) => w.name === old!.name)
          return oldNow?.phase === 'stopping' && workers.some((w) => w.name !== old!.name)
        },
        60_000,
        250,
      )
      await waitForStatus('AVAILABLE', 180_000)
    })
    expect(served.sent).toBeGreaterThan(20)
    expect(served.failed).toBe(0)
    // Both api-servers were replaced (rolling, not skipped).
    const after = t.cp.driver
      .observe(id)
      .filter((c) => c.component === 'api-server')
      .map((c) => c.pid)
    for (const pid of apiServerPids) expect(after).not.toContain(pid)
    await waitForRun('slow_pipeline', 'graceful-1', 180_000)
    for (const ti of await taskInstances('slow_pipeline', 'graceful-1')) {
      expect(ti.state, ti.task_id).toBe('success')
      expect(ti.try_number, ti.task_id).toBe(1)
    }
    const env = await waitForStatus('AVAILABLE', 120_000)
    expect(env.LastUpdate.WorkerReplacementStrategy).toBe('GRACEFUL')
    await waitFor(
      'old worker gone',
      () => !workerStates().some((w) => w.name === old!.name),
      60_000,
    )
  })

  it('FORCED replacement stops the old worker at once; Airflow retries the interrupted task', async () => {
    await trigger('interruptible', 'forced-1', {})
    const [old] = await waitFor(
      'the long task running',
      async () => {
        const tis = await taskInstances('interruptible', 'forced-1')
        return tis.some((ti) => ti.state === 'running') && workerStates()
      },
      120_000,
      500,
    )
    const r = await api('PATCH', `/environments/${NAME}`, {
      // A shorter heartbeat timeout, so the interrupted task is noticed in seconds, not 5 minutes.
      AirflowConfigurationOptions: {
        'core.default_task_retries': '0',
        'scheduler.task_instance_heartbeat_timeout': '15',
      },
      WorkerReplacementStrategy: 'FORCED',
    })
    expect(r.status).toBe(200)
    await waitFor(
      'old worker gone while its task was running',
      () => !workerStates().some((w) => w.name === old!.name),
      30_000,
      250,
    )
    const [interrupted] = await taskInstances('interruptible', 'forced-1')
    expect(interrupted.state).not.toBe('success')
    await waitForRun('interruptible', 'forced-1', 240_000)
    const [done] = await taskInstances('interruptible', 'forced-1')
    expect(done.state).toBe('success')
    expect(done.try_number).toBeGreaterThan(1)
    const env = await waitForStatus('AVAILABLE', 120_000)
    expect(env.LastUpdate.WorkerReplacementStrategy).toBe('FORCED')
  })

  it('SIGKILL on a scheduler and on a web server while DAG runs are in flight: every run succeeds', async () => {
    const runs = ['ha-1', 'ha-2', 'ha-3']
    for (const runId of runs) await trigger('burst', runId, { tasks: 4, seconds: 3 })
    const gatewayPort = Number((await environment()).WebserverUrl.split(':')[1])
    const byName = (name: string) => t.cp.driver.observe(id).find((c) => c.name === name)!
    const scheduler = byName('scheduler-1')
    const webserver = byName('api-server-1')
    process.kill(scheduler.pid!, 'SIGKILL')
    process.kill(webserver.pid!, 'SIGKILL')
    let failures = 0
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`http://127.0.0.1:${gatewayPort}/api/v2/monitor/health`)
      if (res.status !== 200) failures++
      await res.arrayBuffer()
    }
    expect(failures).toBe(0)
    for (const runId of runs) await waitForRun('burst', runId, 240_000)
    for (const runId of runs) {
      for (const ti of await taskInstances('burst', runId)) expect(ti.state).toBe('success')
    }
    await waitFor(
      'both restarted by the driver',
      () =>
        byName('scheduler-1').pid !== scheduler.pid &&
        byName('scheduler-1').phase === 'running' &&
        byName('api-server-1').pid !== webserver.pid &&
        byName('api-server-1').phase === 'running',
      90_000,
    )
    await waitForStatus('AVAILABLE', 120_000)
  })

  it('Schedulers 2 → 3 → 2 adds and removes one scheduler without stopping the others', async () => {
    const pidsOf = () =>
      new Map(
        t.cp.driver
          .observe(id)
          // Workers come and go with the autoscaler; everything else must stay.
          .filter((c) => c.phase !== 'stopping' && c.component !== 'worker')
          .map((c) => [c.name, c.pid]),
      )
    const before = pidsOf()
    expect((await api('PATCH', `/environments/${NAME}`, { Schedulers: 3 })).status).toBe(200)
    await waitForStatus('AVAILABLE', 120_000)
    const three = pidsOf()
    expect(three.has('scheduler-3')).toBe(true)
    for (const [name, pid] of before) expect(three.get(name), name).toBe(pid)
    expect((await api('PATCH', `/environments/${NAME}`, { Schedulers: 2 })).status).toBe(200)
    await waitForStatus('AVAILABLE', 120_000)
    await waitFor('scheduler-3 stopped', () => !pidsOf().has('scheduler-3'), 60_000, 250)
    for (const [name, pid] of before) expect(pidsOf().get(name), name).toBe(pid)
    expect((await environment()).Schedulers).toBe(2)
  })

  it('more than 15 connections per web server scale the web servers out, and in once they close', async () => {
    await waitFor(
      'two web servers, as configured',
      async () => {
        const { webservers } = await status()
        return webservers.desired === 2 && webservers.actual === 2
      },
      120_000,
      500,
    )
    const gatewayPort = Number((await environment()).WebserverUrl.split(':')[1])
    const sockets: Socket[] = []
    try {
      for (let i = 0; i < 40; i++) {
        const socket = connect(gatewayPort, '127.0.0.1')
        await new Promise((resolve, reject) => {
          socket.once('connect', resolve)
          socket.once('error', reject)
        })
        sockets.push(socket)
      }
      await waitFor(
        'a third web server running',
        async () => {
          const s = await status()
          return s.webservers.desired === 3 && s.webservers.actual === 3
        },
        120_000,
        500,
      )
      const upstreamsFile = environmentLayout(
        path.join(t.settings.dataDir, 'environments'),
        id,
      ).gatewayUpstreamsFile
      await waitFor(
        'gateway balances over 3',
        async () => JSON.parse(await readFile(upstreamsFile, 'utf8')).length === 3,
        10_000,
      )
      const res = await fetch(`http://127.0.0.1:${gatewayPort}/api/v2/monitor/health`)
      expect(res.status).toBe(200)
    } finally {
      for (const socket of sockets) socket.destroy()
    }
    await waitFor(
      'back to MinWebservers',
      async () => {
        const s = await status()
        return s.webservers.desired === 2 && s.webservers.actual === 2
      },
      120_000,
      500,
    )
    await waitFor(
      'api-server-3 stopped',
      () => !t.cp.driver.observe(id).some((c) => c.name === 'api-server-3'),
      60_000,
      250,
    )
    expect((await environment()).Status).toBe('AVAILABLE')
  })
})
