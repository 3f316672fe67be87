/**
 * Figures for issue "Workers that scale with the queue and never lose a task" (printed, not
 * asserted), all on one mw1.small environment (MinWorkers 1, MaxWorkers 3, 5 tasks per worker)
 * running real Airflow and real Celery workers:
 *
 *   1. seconds from a backlog appearing to an added worker running tasks: from the first queued
 *      task instance of a burst (16 tasks of 30 s) to the start of its 6th task (worker-1 has 5
 *      slots, so the 6th can only run on an added worker); both instants from Airflow's own
 *      `task_instance` timestamps. Target < 15 s.
 *   2. tasks lost or failed by scale-in over N scale-out/scale-in cycles (default 10): each cycle
 *      is a burst of 15 tasks that scales 1 → 3, then the idle period, then the drain back to 1.
 *      Counted: task instances not `success`, or that needed a second try. Target 0.
 *   3. throughput of a batch of short tasks (default 300 × 1 s) on the environment scaled 1 → 3
 *      by airdock, as a ratio to the same batch on the same Airflow (same scheduler, database,
 *      broker, DAG) run by 3 Celery workers started by hand without airdock (same command and
 *      environment as airdock's, consuming a queue of their own, all started before the batch),
 *      measured one after the other in the same run. Target ≥ 0.95.
 *
 *   npx tsx bench/autoscaling-figures.ts [--cycles 10] [--batch 300]
 *
 * The scale-in idle period is 5 s here (`AIRDOCK_WORKER_SCALE_IN_IDLE_MS`; MWAA's 2 minutes would
 * make 10 cycles take 25 minutes); the policy is otherwise the same.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFile, mkdir, readFile } from 'node:fs/promises'
import { openSync, closeSync } from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { metadataDatabaseFor } from '../src/airflow/metadata-database.js'
import {
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../test/support/control-plane.js'
import { signedFetch } from '../test/support/credentials.js'

const { values: flags } = parseArgs({
  options: { cycles: { type: 'string', default: '10' }, batch: { type: 'string', default: '300' } },
})
const CYCLES = Number(flags.cycles)
const BATCH = Number(flags.batch)
const NAME = 'bench-scaling'
const MAX_WORKERS = 3

let t: TestControlPlane
let id: string
let db: pg.Client

async function api(method: string, pathname: string, body?: unknown): Promise<any> {
  const res = await signedFetch(`${t.cp.endpoint}${pathname}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  return text ? JSON.parse(text) : undefined
}

async function airflow(method: string, apiPath: string, body?: unknown): Promise<any> {
  const r = await api('POST', `/restapi/${NAME}`, {
    Name: NAME,
    Method: method,
    Path: apiPath,
    ...(body ? { Body: body } : {}),
  })
  if (r?.RestApiStatusCode === undefined) throw new Error(JSON.stringify(r))
  return r.RestApiResponse
}

async function status(): Promise<any> {
  return api('GET', `/airdock/v1/environments/${NAME}`)
}

async function trigger(dagId: string, runId: string, conf: Record<string, unknown>): Promise<void> {
  await airflow('POST', `/dags/${dagId}/dagRuns`, { logical_date: null, dag_run_id: runId, conf })
}

/** Waits for the run to end; returns its duration from Airflow's start/end dates, in s. */
async function finish(dagId: string, runId: string): Promise<number> {
  const row = await waitFor(
    `${dagId} ${runId} done`,
    async () => {
      const r = await db.query(
        `SELECT state, extract(epoch from end_date - start_date)::float AS seconds
         FROM dag_run WHERE dag_id = $1 AND run_id = $2`,
        [dagId, runId],
      )
      const state = r.rows[0]?.state
      return state === 'success' || state === 'failed' ? r.rows[0] : undefined
    },
    1_800_000,
    1_000,
  )
  if (row.state !== 'success') console.log(`  ${dagId} ${runId} ended ${row.state}`)
  return row.seconds
}

async function badTasks(dagId: string, runId: string): Promise<number> {
  const r = await db.query(
    `SELECT count(*)::int AS n FROM task_instance
     WHERE dag_id = $1 AND run_id = $2 AND (state IS DISTINCT FROM 'success' OR try_number > 1)`,
    [dagId, runId],
  )
  return r.rows[0].n
}

async function backToOneWorker(): Promise<void> {
  await waitFor(
    'back to 1 worker',
    async () => {
      const s = await status()
      return s.workers.desired === 1 && s.workers.actual === 1 && s.workers.draining === 0
    },
    300_000,
    500,
  )
}

async function scaleOutLatency(): Promise<number> {
  await trigger('burst', 'latency', { tasks: 16, seconds: 30 })
  await finish('burst', 'latency')
  const r = await db.query(
    `SELECT min(queued_dttm) AS queued,
       (SELECT start_date FROM task_instance WHERE dag_id = 'burst' AND run_id = 'latency'
          AND task_id = 'work' ORDER BY start_date OFFSET 5 LIMIT 1) AS sixth
     FROM task_instance WHERE dag_id = 'burst' AND run_id = 'latency' AND task_id = 'work'`,
  )
  const { queued, sixth } = r.rows[0]
  return (new Date(sixth).getTime() - new Date(queued).getTime()) / 1000
}

/** Starts `count` Celery workers by hand (airdock's worker command and environment, queue `hand`). */
async function startHandWorkers(count: number): Promise<ChildProcess[]> {
  const spec = t.cp.driver.specOf(id, 'worker-1')
  if (!spec) throw new Error('worker-1 has no spec')
  const children: ChildProcess[] = []
  for (let i = 1; i <= count; i++) {
    const args = [...spec.args]
    args[args.indexOf('--queues') + 1] = 'hand'
    args[args.indexOf('--celery-hostname') + 1] = `${id}-hand-${i}@%h`
    const logFile = path.join(t.settings.dataDir, `hand-worker-${i}.log`)
    const fd = openSync(logFile, 'a')
    children.push(
      spawn(spec.command, args, { env: spec.env, cwd: spec.cwd, stdio: ['ignore', fd, fd] }),
    )
    closeSync(fd)
  }
  await waitFor(
    'hand workers ready',
    async () => {
      for (let i = 1; i <= count; i++) {
        const log = await readFile(path.join(t.settings.dataDir, `hand-worker-${i}.log`), 'utf8')
        if (!log.includes('ready.')) return false
      }
      return true
    },
    120_000,
    500,
  )
  return children
}

async function main(): Promise<void> {
  t = await startTestControlPlane(
    await testEnvironmentVariables({ AIRDOCK_WORKER_SCALE_IN_IDLE_MS: '5000' }),
  )
  try {
    const dags = path.join(t.settings.dataDir, 'buckets', 'bench-bucket', 'dags')
    await mkdir(dags, { recursive: true })
    await copyFile(path.join(repoRoot, 'test/fixtures/dags/burst.py'), path.join(dags, 'burst.py'))
    await api('PUT', `/environments/${NAME}`, {
      ExecutionRoleArn: 'arn:aws:iam::000000000000:role/bench',
      SourceBucketArn: 'arn:aws:s3:::bench-bucket',
      DagS3Path: 'dags',
      NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
      EnvironmentClass: 'mw1.small',
      MinWorkers: 1,
      MaxWorkers: MAX_WORKERS,
    })
    const env = await waitFor(
      'AVAILABLE',
      async () => {
        const e = (await api('GET', `/environments/${NAME}`)).Environment
        return e?.Status === 'AVAILABLE' ? e : undefined
      },
      600_000,
    )
    id = env.WebserverUrl.split('.')[0]
    const url = new URL(t.cp.postgres.adminUrl)
    url.pathname = `/${metadataDatabaseFor(id).name}`
    db = new pg.Client({ connectionString: url.toString() })
    await db.connect()
    for (const dagId of ['burst', 'burst_hand']) {
      await waitFor(
        `${dagId} listed`,
        async () => (await airflow('GET', `/dags/${dagId}`))?.dag_id === dagId,
        120_000,
      )
      await airflow('PATCH', `/dags/${dagId}`, { is_paused: false })
    }

    const latency = await scaleOutLatency()
    console.log(`backlog → added worker running tasks: ${latency.toFixed(1)} s (target < 15 s)`)
    await backToOneWorker()

    let lost = 0
    let scaledOut = 0
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const runId = `cycle-${cycle}`
      let max = 0
      let finished = false
      await trigger('burst', runId, { tasks: 15, seconds: 8 })
      const watching = (async () => {
        while (!finished) {
          max = Math.max(max, (await status()).workers.actual)
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
      })()
      try {
        await finish('burst', runId)
      } finally {
        finished = true
        await watching
      }
      await backToOneWorker()
      const bad = await badTasks('burst', runId)
      lost += bad
      if (max === MAX_WORKERS) scaledOut++
      console.log(`cycle ${cycle}: max ${max} workers, back to 1, ${bad} tasks lost/failed/retried`)
    }
    console.log(
      `scale-in over ${CYCLES} cycles (${scaledOut} reached ${MAX_WORKERS} workers): ${lost} tasks lost or failed (target 0)`,
    )

    // Throughput: airdock scaling 1 → 3 …
    await backToOneWorker()
    await trigger('burst', 'batch-airdock', { tasks: BATCH, seconds: 1 })
    const airdockSeconds = await finish('burst', 'batch-airdock')
    const airdockBad = await badTasks('burst', 'batch-airdock')
    await backToOneWorker()
    // … and 3 workers started by hand, already running.
    const hand = await startHandWorkers(MAX_WORKERS)
    let handSeconds: number
    let handBad: number
    try {
      await trigger('burst_hand', 'batch-hand', { tasks: BATCH, seconds: 1 })
      handSeconds = await finish('burst_hand', 'batch-hand')
      handBad = await badTasks('burst_hand', 'batch-hand')
    } finally {
      for (const child of hand) child.kill('SIGTERM')
      await Promise.all(hand.map((c) => new Promise((resolve) => c.once('exit', resolve))))
    }
    const ratio = handSeconds / airdockSeconds
    console.log(
      `throughput, ${BATCH} × 1 s tasks: airdock 1→${MAX_WORKERS} workers ${airdockSeconds.toFixed(1)} s (${airdockBad} not ok), ` +
        `${MAX_WORKERS} hand-started workers ${handSeconds.toFixed(1)} s (${handBad} not ok): ratio ${ratio.toFixed(3)} (target ≥ 0.95)`,
    )
    console.table([
      {
        figure: 'backlog → added worker running tasks',
        value: `${latency.toFixed(1)} s`,
        target: '< 15 s',
      },
      {
        figure: `tasks lost/failed by scale-in, ${CYCLES} cycles`,
        value: String(lost),
        target: '0',
      },
      {
        figure: `throughput ratio, ${BATCH} short tasks, airdock 1→${MAX_WORKERS} vs ${MAX_WORKERS} by hand`,
        value: `${ratio.toFixed(3)} (${(BATCH / airdockSeconds).toFixed(2)} vs ${(BATCH / handSeconds).toFixed(2)} tasks/s)`,
        target: '≥ 0.95',
      },
    ])
  } finally {
    await db?.end().catch(() => undefined)
    await t.destroy()
  }
}

await main()
