/**
 * Figures for issue "Environments that run real Apache Airflow" (printed, not asserted):
 *
 *   1. seconds from CreateEnvironment to AVAILABLE for mw1.micro and mw1.small, runtime built;
 *   2. the same with a cold runtime build (empty runtime folder; `--cold-cache` also empties
 *      uv's download cache, so every wheel is fetched again);
 *   3. seconds from a new DAG file landing in the bucket to its listing by the Airflow REST API;
 *   4. resident memory (RSS) of an idle mw1.micro and mw1.small, summed over every process of
 *      every component (process groups, so task runners and api-server workers count).
 *
 * Each figure is printed next to its target and MWAA's documented figure, as a ratio.
 *
 *   npx tsx bench/environment-figures.ts [--skip-cold] [--cold-cache] [--baseline]
 *
 * `--baseline` also measures new-DAG latency on the same environment switched to Airflow's stock
 * `[dag_processor] refresh_interval` (300 s), side by side in the same run.
 */
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../test/support/control-plane.js'
import { signedFetch } from '../test/support/credentials.js'

const args = new Set(process.argv.slice(2))
const results: { figure: string; value: string; target: string; ratio: string }[] = []

function record(
  figure: string,
  seconds: number,
  targetSeconds: number,
  mwaaSeconds?: number,
): void {
  results.push({
    figure,
    value: `${seconds.toFixed(1)} s`,
    target: `< ${targetSeconds} s`,
    ratio:
      `${(seconds / targetSeconds).toFixed(2)}× target` +
      (mwaaSeconds
        ? `, ${(mwaaSeconds / seconds).toFixed(0)}× faster than MWAA (${mwaaSeconds / 60} min)`
        : ''),
  })
  console.log(`${figure}: ${seconds.toFixed(1)} s`)
}

const body = (environmentClass: string) => ({
  ExecutionRoleArn: 'arn:aws:iam::000000000000:role/bench',
  SourceBucketArn: 'arn:aws:s3:::bench-bucket',
  DagS3Path: 'dags',
  NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
  EnvironmentClass: environmentClass,
})

async function api(
  t: TestControlPlane,
  method: string,
  pathname: string,
  payload?: unknown,
): Promise<any> {
  const res = await signedFetch(`${t.cp.endpoint}${pathname}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  })
  return res.json()
}

async function createAndWait(
  t: TestControlPlane,
  name: string,
  environmentClass: string,
): Promise<number> {
  const started = Date.now()
  await api(t, 'PUT', `/environments/${name}`, body(environmentClass))
  await waitFor(
    `${name} AVAILABLE`,
    async () => {
      const env = (await api(t, 'GET', `/environments/${name}`)).Environment
      if (env.Status === 'CREATE_FAILED') throw new Error(JSON.stringify(env.LastUpdate))
      return env.Status === 'AVAILABLE'
    },
    1_800_000,
    250,
  )
  return (Date.now() - started) / 1000
}

function groupRssKiB(pid: number): number {
  const out = execFileSync('ps', ['-o', 'rss=', '-g', String(pid)], { encoding: 'utf8' })
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0)
    .reduce((a, b) => a + b, 0)
}

async function environmentRssMiB(
  t: TestControlPlane,
  name: string,
): Promise<{ total: number; parts: string }> {
  const env = (await api(t, 'GET', `/environments/${name}`)).Environment
  const id = String(env.WebserverUrl).split('.')[0]!
  const parts = t.cp.driver.observe(id).map((c) => [c.name, groupRssKiB(c.pid!) / 1024] as const)
  return {
    total: parts.reduce((a, [, v]) => a + v, 0),
    parts: parts.map(([n, v]) => `${n} ${v.toFixed(0)}`).join(', '),
  }
}

async function dagLatency(t: TestControlPlane, name: string, samples: number): Promise<number[]> {
  const dagsDir = path.join(t.settings.dataDir, 'buckets', 'bench-bucket', 'dags')
  const seconds: number[] = []
  for (let i = 0; i < samples; i++) {
    const dagId = `bench_new_dag_${Date.now()}_${i}`
    const source = `from datetime import datetime\nfrom airflow.sdk import DAG\nfrom airflow.providers.standard.operators.empty import EmptyOperator\nwith DAG("${dagId}", start_date=datetime(2026, 1, 1), schedule=None):\n    EmptyOperator(task_id="noop")\n`
    const tmp = path.join(dagsDir, `.${dagId}.tmp`)
    await writeFile(tmp, source)
    const landed = Date.now()
    await rename(tmp, path.join(dagsDir, `${dagId}.py`))
    await waitFor(
      `${dagId} listed`,
      async () => {
        const r = await api(t, 'POST', `/restapi/${name}`, {
          Path: `/dags/${dagId}`,
          Method: 'GET',
        })
        return r.RestApiStatusCode === 200
      },
      600_000,
      100,
    )
    seconds.push((Date.now() - landed) / 1000)
    console.log(`DAG file → listed: ${seconds[seconds.length - 1]!.toFixed(1)} s`)
  }
  return seconds
}

async function main(): Promise<void> {
  // Warm runtime: the shared one built by `make setup`.
  const t = await startTestControlPlane(await testEnvironmentVariables())
  try {
    await mkdir(path.join(t.settings.dataDir, 'buckets', 'bench-bucket', 'dags'), {
      recursive: true,
    })
    record(
      'CreateEnvironment → AVAILABLE, mw1.micro, runtime built',
      await createAndWait(t, 'bench-micro', 'mw1.micro'),
      45,
      25 * 60,
    )
    const lat = await dagLatency(t, 'bench-micro', 5)
    const sorted = [...lat].sort((a, b) => a - b)
    record('new DAG file → listed by the Airflow API (median of 5)', sorted[2]!, 10, 30 + 300)
    record('new DAG file → listed by the Airflow API (worst of 5)', sorted[4]!, 10, 30 + 300)
    if (args.has('--baseline')) {
      // The same Airflow with its stock DAG-folder refresh (300 s), measured side by side.
      await api(t, 'PATCH', '/environments/bench-micro', {
        AirflowConfigurationOptions: { 'dag_processor.refresh_interval': '300' },
      })
      await waitFor(
        'stock settings applied',
        async () => {
          const env = (await api(t, 'GET', '/environments/bench-micro')).Environment
          return env.Status === 'AVAILABLE' && env.LastUpdate.Source === 'UpdateEnvironment'
        },
        600_000,
      )
      const stock = await dagLatency(t, 'bench-micro', 2)
      const worst = Math.max(...stock)
      results.push({
        figure: 'new DAG file → listed, same Airflow with stock refresh_interval=300 (worst of 2)',
        value: `${worst.toFixed(1)} s`,
        target: '—',
        ratio: `airdock's settings are ${(worst / sorted[4]!).toFixed(0)}× faster (worst vs worst)`,
      })
      await api(t, 'PATCH', '/environments/bench-micro', { AirflowConfigurationOptions: {} })
      await waitFor(
        'airdock settings back',
        async () => {
          const env = (await api(t, 'GET', '/environments/bench-micro')).Environment
          return (
            env.Status === 'AVAILABLE' &&
            Object.keys(env.AirflowConfigurationOptions ?? {}).length === 0
          )
        },
        600_000,
      )
    }
    await new Promise((r) => setTimeout(r, 20_000))
    const microRss = await environmentRssMiB(t, 'bench-micro')
    console.log(`idle mw1.micro RSS: ${microRss.total.toFixed(0)} MiB (${microRss.parts})`)
    await api(t, 'DELETE', '/environments/bench-micro')
    await waitFor(
      'micro deleted',
      async () =>
        (await api(t, 'GET', '/environments/bench-micro')).Environment?.Status !== 'DELETING',
      120_000,
    )

    record(
      'CreateEnvironment → AVAILABLE, mw1.small, runtime built',
      await createAndWait(t, 'bench-small', 'mw1.small'),
      45,
      25 * 60,
    )
    await new Promise((r) => setTimeout(r, 20_000))
    const smallRss = await environmentRssMiB(t, 'bench-small')
    console.log(`idle mw1.small RSS: ${smallRss.total.toFixed(0)} MiB (${smallRss.parts})`)
    results.push({
      figure: 'idle mw1.micro RSS, all processes',
      value: `${microRss.total.toFixed(0)} MiB`,
      target: '—',
      ratio: microRss.parts,
    })
    results.push({
      figure: 'idle mw1.small RSS, all processes',
      value: `${smallRss.total.toFixed(0)} MiB`,
      target: '—',
      ratio: smallRss.parts,
    })
  } finally {
    await t.destroy()
  }

  if (!args.has('--skip-cold')) {
    // Cold runtime: an empty runtime folder, with uv's download cache warm, and (with
    // --cold-cache) also with an empty uv cache, so every wheel is downloaded again.
    const variants = args.has('--cold-cache') ? [false, true] : [false]
    for (const emptyCache of variants) {
      const runtimeDir = await mkdtemp(path.join(tmpdir(), 'airdock-cold-runtime-'))
      const cacheDir = emptyCache
        ? await mkdtemp(path.join(tmpdir(), 'airdock-cold-uv-'))
        : undefined
      const vars = await testEnvironmentVariables({
        AIRDOCK_RUNTIME_DIR: runtimeDir,
        ...(cacheDir ? { UV_CACHE_DIR: cacheDir } : {}),
      })
      const cold = await startTestControlPlane(vars)
      try {
        await mkdir(path.join(cold.settings.dataDir, 'buckets', 'bench-bucket', 'dags'), {
          recursive: true,
        })
        const seconds = await createAndWait(cold, 'bench-cold', 'mw1.micro')
        const built = await cold.cp.runtimes.find('3.3.2')
        const marker = JSON.parse(
          await readFile(path.join(built!.dir, '.airdock-runtime.json'), 'utf8'),
        ) as { buildSeconds: number }
        const label = emptyCache ? 'empty uv cache' : 'uv cache warm'
        record(
          `CreateEnvironment → AVAILABLE, mw1.micro, cold runtime build (${label})`,
          seconds,
          45,
          25 * 60,
        )
        results.push({
          figure: `  of which: runtime build (${label})`,
          value: `${marker.buildSeconds.toFixed(1)} s`,
          target: '—',
          ratio: '',
        })
      } finally {
        await cold.destroy()
        await rm(runtimeDir, { recursive: true, force: true })
        if (cacheDir) await rm(cacheDir, { recursive: true, force: true })
      }
    }
  }

  console.log('\n| figure | measured | target | ratio |\n| --- | --- | --- | --- |')
  for (const r of results) console.log(`| ${r.figure} | ${r.value} | ${r.target} | ${r.ratio} |`)
}

await main()
