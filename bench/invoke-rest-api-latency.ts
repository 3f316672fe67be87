/**
 * Figures for issue 12, point 1 (printed, not asserted): how fast InvokeRestApi answers
 * `GET /dags` on a 2-api-server environment, idle and while 10 tasks run, with airdock's
 * component priorities (batch components at `BATCH_NICENESS`, src/airflow/components.ts) and
 * without them, side by side in one run on one environment:
 *
 *   - one mw1.small environment (2 api-servers, 2 schedulers, MinWorkers = MaxWorkers = 2, so 10
 *     task slots) with the `load` DAG (test/fixtures/dags/load.py: N mapped tasks that sleep or
 *     burn CPU for S seconds);
 *   - `GET /dags` through InvokeRestApi (signed, as a client sends it), one request at a time,
 *     200 ms apart; every answer counts (an MWAA error such as the 504 of the 10 s limit counts
 *     with its latency and is listed by status);
 *   - three conditions: idle for `--idle-seconds`; from the trigger of a run of `--tasks`
 *     sleeping tasks until it ends; the same with CPU-bound tasks;
 *   - within each condition the priorities are switched on and off every `--slice-seconds`
 *     (on first), and each request counts for the mode it started in, so both modes see the
 *     same phases of the run and the same outside load. "on" is what the driver sets at spawn:
 *     every thread of every process of a component, and its autogroup, at the spec's niceness;
 *     "off" is the same at 0 (`setpriority` on every thread, `/proc/<pid>/autogroup`; processes
 *     forked during a slice inherit the slice's value and are reset at the next switch). This
 *     needs root: lowering a nice value needs CAP_SYS_NICE.
 *
 * With `--foreign-cpu N`, N processes that only burn CPU (at niceness 0, each a session of its
 * own, as other users' work on a shared machine) run through the three conditions.
 *
 * Before that, a warm-up run (10 tasks of 1 s) and, idle, the latency by hop: the api-server on
 * its own port, the gateway, InvokeRestApi (SigV4, policy, token, gateway).
 *
 *   npx tsx bench/invoke-rest-api-latency.ts [--idle-seconds 60] [--tasks 10] [--task-seconds 120]
 *     [--slice-seconds 10] [--foreign-cpu 0]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { loadavg, setPriority, tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { mintAirflowToken } from '../src/airflow/tokens.js'
import { setAutogroupNiceness } from '../src/runtime/local/priority.js'
import {
  queryMetadataDatabase,
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../test/support/control-plane.js'
import { environmentClient, microEnvironmentBody } from '../test/support/mwaa-client.js'

const { values: flags } = parseArgs({
  options: {
    'idle-seconds': { type: 'string', default: '60' },
    tasks: { type: 'string', default: '10' },
    'task-seconds': { type: 'string', default: '120' },
    'slice-seconds': { type: 'string', default: '10' },
    'foreign-cpu': { type: 'string', default: '0' },
  },
})
const IDLE_MS = Number(flags['idle-seconds']) * 1000
const TASKS = Number(flags.tasks)
const TASK_SECONDS = Number(flags['task-seconds'])
const SLICE_MS = Number(flags['slice-seconds']) * 1000
const FOREIGN_CPU = Number(flags['foreign-cpu'])
const NAME = 'bench-latency'
const BUCKET = 'bench-latency-bucket'
const INTERVAL_MS = 200

/** Latencies (ms) and answer statuses of one sample. */
interface Sample {
  latenciesMs: number[]
  statuses: Record<string, number>
}

/** p50 / p99 / max of a sample, in ms (nearest rank). */
function summary(sample: Sample): { n: number; p50: number; p99: number; max: number } {
  const sorted = [...sample.latenciesMs].sort((a, b) => a - b)
  const rank = (q: number) => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN
  return { n: sorted.length, p50: rank(0.5), p99: rank(0.99), max: sorted.at(-1) ?? NaN }
}

/** Priority mode: as airdock runs the components, or every one at niceness 0. */
type Mode = 'on' | 'off'

/**
 * Calls `request` one at a time, `INTERVAL_MS` apart, until `until` resolves; each request is
 * counted for the mode `mode()` returns when it starts.
 */
async function sample(
  request: () => Promise<number>,
  until: Promise<unknown>,
  mode: () => Mode,
): Promise<Record<Mode, Sample>> {
  let done = false
  void until.finally(() => (done = true))
  const result: Record<Mode, Sample> = {
    on: { latenciesMs: [], statuses: {} },
    off: { latenciesMs: [], statuses: {} },
  }
  while (!done) {
    const into = result[mode()]
    const startedAt = performance.now()
    let status: string
    try {
      status = String(await request())
    } catch (err) {
      status = (err as Error).name
    }
    into.latenciesMs.push(performance.now() - startedAt)
    into.statuses[status] = (into.statuses[status] ?? 0) + 1
    await new Promise((r) => setTimeout(r, INTERVAL_MS))
  }
  return result
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Field 19 (`nice`) and field 4 (`ppid`) of `/proc/<pid>/stat`. */
async function statOf(pid: number): Promise<{ ppid: number; nice: number } | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  const fields = text
    .slice(text.lastIndexOf(')') + 1)
    .trim()
    .split(/\s+/)
  return { ppid: Number(fields[4 - 3]), nice: Number(fields[19 - 3]) }
}

/** `roots` and every process descending from them. */
async function processTree(roots: number[]): Promise<number[]> {
  const children = new Map<number, number[]>()
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = await statOf(Number(entry))
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)])
  }
  const tree: number[] = []
  const queue = [...roots]
  while (queue.length > 0) {
    const pid = queue.shift()!
    tree.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return tree
}

/** The nice values found in the process trees of the components whose name starts with `prefix`. */
async function niceValues(pids: Record<string, number>, prefix: string): Promise<number[]> {
  const roots = Object.entries(pids)
    .filter(([name, pid]) => name.startsWith(prefix) && pid > 0)
    .map(([, pid]) => pid)
  const values = new Set<number>()
  for (const pid of await processTree(roots)) {
    const stat = await statOf(pid)
    if (stat) values.add(stat.nice)
  }
  return [...values].sort((a, b) => a - b)
}

/**
 * Puts every thread of every process of each component, and the component's autogroup, at
 * `nicenessOf(component name)`.
 * @returns how many threads were set
 */
async function renice(
  pids: Record<string, number>,
  nicenessOf: (name: string) => number,
): Promise<number> {
  let threads = 0
  for (const [name, root] of Object.entries(pids)) {
    if (root <= 0) continue
    const niceness = nicenessOf(name)
    for (const pid of await processTree([root])) {
      for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
        try {
          setPriority(Number(tid), niceness)
          threads++
        } catch {
          // The thread ended meanwhile.
        }
      }
    }
    // Rate-limited only without CAP_SYS_ADMIN; this bench runs as root.
    while (setAutogroupNiceness(root, niceness) === 'retry') await sleep(120)
  }
  return threads
}

let t: TestControlPlane | undefined
const foreign: ChildProcess[] = []
try {
  t = await startTestControlPlane(await testEnvironmentVariables({ AIRDOCK_LOG_LEVEL: 'info' }), {
    logFile: path.join(tmpdir(), `airdock-bench-latency-${Date.now()}.log`),
  })
  const cp = t
  const dags = path.join(cp.settings.dataDir, 'buckets', BUCKET, 'dags')
  await mkdir(dags, { recursive: true })
  await copyFile(path.join(repoRoot, 'test/fixtures/dags/load.py'), path.join(dags, 'load.py'))
  const client = environmentClient(() => cp.cp.endpoint, NAME)
  const created = await client.api(
    'PUT',
    `/environments/${NAME}`,
    microEnvironmentBody(BUCKET, {
      EnvironmentClass: 'mw1.small',
      MinWorkers: 2,
      MaxWorkers: 2,
      MinWebservers: 2,
      MaxWebservers: 2,
    }),
  )
  if (created.status !== 200) throw new Error(`create: ${JSON.stringify(created.json)}`)
  await client.waitForStatus('AVAILABLE', 900_000)
  await waitFor(
    'DAG load parsed',
    async () => (await client.invokeRestApi('GET', '/dags/load')).status === 200,
    300_000,
  )
  await client.invokeRestApi('PATCH', '/dags/load', { is_paused: false })

  let runs = 0
  /** Triggers a `load` run and resolves when it has ended (read from the metadata database). */
  async function run(conf: { tasks: number; seconds: number; cpu: boolean }): Promise<string> {
    const runId = `r${++runs}`
    const answer = await client.invokeRestApi('POST', '/dags/load/dagRuns', {
      logical_date: null,
      dag_run_id: runId,
      conf,
    })
    if (answer.status !== 200) throw new Error(`trigger: ${JSON.stringify(answer.json)}`)
    return waitFor(
      `run ${runId} ended`,
      async () => {
        const rows = await queryMetadataDatabase<{ state: string }>(
          cp,
          NAME,
          "SELECT state FROM dag_run WHERE dag_id = 'load' AND run_id = $1",
          [runId],
        )
        const state = rows[0]?.state
        return state === 'success' || state === 'failed' ? state : undefined
      },
      1_800_000,
    )
  }
  const invokeDags = async () => (await client.invokeRestApi('GET', '/dags')).status

  console.log(`warm-up: ${await run({ tasks: TASKS, seconds: 1, cpu: false })}`)

  // Idle, by hop.
  const checks: string[] = []
  const spawned = await client.componentPids()
  checks.push(
    `as spawned by the driver: nice of worker trees ${JSON.stringify(await niceValues(spawned, 'worker-'))}, ` +
      `dag-processor ${JSON.stringify(await niceValues(spawned, 'dag-processor-'))}, ` +
      `api-servers ${JSON.stringify(await niceValues(spawned, 'api-server-'))}`,
  )
  const record = (await cp.cp.store.get(NAME))!
  const secrets = (await cp.cp.reconciler.secretsFor(record))!
  const token = await mintAirflowToken(secrets.jwtSecret, 'bench', 'ADMIN', 3600)
  const apiServerArgs = cp.cp.driver.specOf(record.id, 'api-server-1')!.args
  const apiServerPort = Number(apiServerArgs[apiServerArgs.indexOf('--port') + 1])
  const gatewayPort = Number(String((await client.environment()).WebserverUrl).split(':')[1])
  const direct = (port: number) => async () => {
    const res = await fetch(`http://127.0.0.1:${port}/api/v2/dags`, {
      headers: { authorization: `Bearer ${token}` },
    })
    await res.arrayBuffer()
    return res.status
  }
  const hops: [string, () => Promise<number>][] = [
    ['api-server-1 on its own port', direct(apiServerPort)],
    ['gateway', direct(gatewayPort)],
    ['InvokeRestApi', invokeDags],
  ]
  const hopRows: string[] = []
  for (const [label, request] of hops) {
    const s = summary((await sample(request, sleep(IDLE_MS / 3), () => 'on')).on)
    hopRows.push(
      `| ${label} | ${s.n} | ${s.p50.toFixed(0)} | ${s.p99.toFixed(0)} | ${s.max.toFixed(0)} |`,
    )
  }

  const conditions = ['idle', `${TASKS} sleeping tasks`, `${TASKS} CPU-bound tasks`] as const
  const results = new Map<string, Sample>()
  for (let i = 0; i < FOREIGN_CPU; i++) {
    foreign.push(
      spawn(process.execPath, ['-e', 'for (;;) {}'], { detached: true, stdio: 'ignore' }),
    )
  }
  if (FOREIGN_CPU > 0) checks.push(`${FOREIGN_CPU} foreign CPU-bound processes at niceness 0`)
  let mode: Mode = 'on'
  const specNiceness = (name: string) => cp.cp.driver.specOf(record.id, name)?.niceness ?? 0
  /** Switches the mode every SLICE_MS until `until` resolves; ends in mode "on". */
  async function alternate(until: Promise<unknown>, label: string): Promise<void> {
    let done = false
    void until.finally(() => (done = true))
    for (let slice = 0; !done; slice++) {
      const next: Mode = slice % 2 === 0 ? 'on' : 'off'
      const now = await client.componentPids()
      const threads = await renice(now, next === 'on' ? specNiceness : () => 0)
      mode = next
      if (slice === 2 || slice === 3) {
        checks.push(
          `${label}, ${next}: ${threads} threads set; nice of worker trees ${JSON.stringify(await niceValues(now, 'worker-'))}, ` +
            `of api-servers ${JSON.stringify(await niceValues(now, 'api-server-'))}; load average ${loadavg()[0]!.toFixed(1)}`,
        )
      }
      await Promise.race([sleep(SLICE_MS), until])
    }
    await renice(await client.componentPids(), specNiceness)
    mode = 'on'
  }
  for (const condition of conditions) {
    const cpu = condition.includes('CPU')
    const ended =
      condition === 'idle' ? sleep(IDLE_MS) : run({ tasks: TASKS, seconds: TASK_SECONDS, cpu })
    const [samples] = await Promise.all([
      sample(invokeDags, ended, () => mode),
      alternate(ended, condition),
    ])
    results.set(`on ${condition}`, samples.on)
    results.set(`off ${condition}`, samples.off)
    if (condition !== 'idle') checks.push(`${condition}: run ${String(await ended)}`)
  }

  const cell = (s: Sample) => {
    const { n, p50, p99, max } = summary(s)
    const errors = Object.entries(s.statuses)
      .filter(([status]) => status !== '200')
      .map(([status, count]) => `${count}× ${status}`)
    return `${p50.toFixed(0)} / ${p99.toFixed(0)} / ${max.toFixed(0)} (n ${n}${errors.length ? `, ${errors.join(', ')}` : ''})`
  }
  console.log('\nInvokeRestApi GET /dags, ms: p50 / p99 / max (samples, answers other than 200)\n')
  console.log('| condition | priorities off (before) | priorities on (after) |')
  console.log('| --- | --- | --- |')
  for (const condition of conditions) {
    console.log(
      `| ${condition} | ${cell(results.get(`off ${condition}`)!)} | ${cell(results.get(`on ${condition}`)!)} |`,
    )
  }
  console.log('\nIdle, by hop (priorities on), ms\n')
  console.log('| hop | n | p50 | p99 | max |')
  console.log('| --- | --- | --- | --- | --- |')
  for (const row of hopRows) console.log(row)
  console.log(`\nchecks:\n  ${checks.join('\n  ')}`)
} finally {
  for (const child of foreign) child.kill('SIGKILL')
  await t?.destroy()
}
process.exit(0)
