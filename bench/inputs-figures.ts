/**
 * Figures for the issue "requirements.txt, plugins.zip, startup scripts … validated before they
 * can break anything" (printed, not asserted), on one mw1.micro environment:
 *
 *   1. seconds from UpdateEnvironment with a new requirements.txt to AVAILABLE, cold (uv's
 *      download cache empty: a fresh `UV_CACHE_DIR`) and warm (cache filled, new layer), and for
 *      requirements another environment already installed (the layer is reused);
 *   2. seconds from UpdateEnvironment with a requirements.txt that cannot install to
 *      UPDATE_FAILED;
 *   3. seconds for an in-place Airflow version upgrade: an environment created on 3.2.1, then
 *      UpdateEnvironment with AirflowVersion 3.3.2 to AVAILABLE (UPDATING → CREATING_SNAPSHOT →
 *      UPDATING → AVAILABLE), measured after the other environments are deleted.
 *
 * Each is printed next to MWAA's documented figure as a ratio: 10–30 minutes for an update
 * (against the lower bound, 10 min), and up to 2 hours for a version change (against that upper
 * bound, the only figure MWAA gives).
 *
 *   npx tsx bench/inputs-figures.ts
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../test/support/control-plane.js'
import { environmentClient, microEnvironmentBody } from '../test/support/mwaa-client.js'

/** An MWAA figure to compare with. */
interface MwaaFigure {
  seconds: number
  /** How the comparison reads: "… faster than <label>", or "… faster <label>" for "vs …". */
  label: string
}

/** MWAA's update time for requirements.txt, lower bound (reference §11): 10 minutes. */
const MWAA_UPDATE: MwaaFigure = { seconds: 600, label: "MWAA's 10 min" }
/** MWAA's time for an Airflow version change, an upper bound (reference §10/§11): 2 hours. */
const MWAA_VERSION_CHANGE: MwaaFigure = {
  seconds: 7200,
  label: "vs MWAA's up to 2 h, its documented upper bound",
}
const BUCKET = 'bench-inputs'

let t: TestControlPlane | undefined
const cache = await mkdtemp(path.join(tmpdir(), 'uv-cold-cache-'))
const rows: string[] = []

function record(figure: string, seconds: number, mwaa: MwaaFigure = MWAA_UPDATE): void {
  const ratio = (mwaa.seconds / seconds).toFixed(0)
  const versus = mwaa.label.startsWith('vs ') ? mwaa.label : `than ${mwaa.label}`
  const line = `${figure}: ${seconds.toFixed(1)} s (${ratio}× faster ${versus})`
  rows.push(line)
  console.log(line)
}

try {
  t = await startTestControlPlane(await testEnvironmentVariables({ UV_CACHE_DIR: cache }))
  await t.cp.objectStore.ensureBucket(BUCKET)
  await t.cp.objectStore.put(BUCKET, 'dags/.keep', '')
  const put = async (key: string, body: string) =>
    (await t!.cp.objectStore.put(BUCKET, key, body)).version
  const create = async (name: string, extra: Record<string, unknown> = {}) => {
    const c = environmentClient(() => t!.cp.endpoint, name)
    const res = await c.api('PUT', `/environments/${name}`, microEnvironmentBody(BUCKET, extra))
    if (res.status !== 200) throw new Error(JSON.stringify(res.json))
    await c.waitForStatus('AVAILABLE')
    return c
  }
  const timedUpdate = async (
    c: ReturnType<typeof environmentClient>,
    name: string,
    key: string,
    text: string,
    until: 'AVAILABLE' | 'UPDATE_FAILED',
  ) => {
    const version = await put(key, text)
    const started = performance.now()
    const res = await c.api('PATCH', `/environments/${name}`, {
      RequirementsS3Path: key,
      RequirementsS3ObjectVersion: version,
    })
    if (res.status !== 200) throw new Error(JSON.stringify(res.json))
    // The update is recorded before the answer, so the status is UPDATING from here on.
    await c.waitForStatus(until, 600_000)
    return (performance.now() - started) / 1000
  }
  const remove = async (c: ReturnType<typeof environmentClient>, name: string) => {
    const res = await c.api('DELETE', `/environments/${name}`)
    if (res.status !== 200) throw new Error(JSON.stringify(res.json))
    await waitFor(`${name} deleted`, async () => {
      const e = await c.environment()
      return e === undefined || e.Status === 'DELETED'
    })
  }
  /**
   * Times UpdateEnvironment with another AirflowVersion until AVAILABLE or UPDATE_FAILED, polling
   * GetEnvironment every 100 ms. @throws Error unless it ends AVAILABLE on `version` after a
   * CREATING_SNAPSHOT
   */
  const timedVersionChange = async (
    c: ReturnType<typeof environmentClient>,
    name: string,
    version: string,
  ) => {
    const started = performance.now()
    const res = await c.api('PATCH', `/environments/${name}`, { AirflowVersion: version })
    if (res.status !== 200) throw new Error(JSON.stringify(res.json))
    // Each status seen (consecutive repeats collapsed) and the second it was first seen.
    const seen: { status: string; at: number }[] = []
    const env = await waitFor(
      `${name} AVAILABLE or UPDATE_FAILED`,
      async () => {
        const e = await c.environment()
        if (seen.at(-1)?.status !== e.Status) {
          seen.push({ status: e.Status, at: (performance.now() - started) / 1000 })
        }
        return e.Status === 'AVAILABLE' || e.Status === 'UPDATE_FAILED' ? e : undefined
      },
      900_000,
      100,
    )
    const seconds = (performance.now() - started) / 1000
    const trace = seen.map((s) => `${s.status} @${s.at.toFixed(1)} s`).join(' → ')
    console.log(`  ${name}: ${trace}`)
    if (env.Status !== 'AVAILABLE' || env.AirflowVersion !== version) {
      throw new Error(
        `${name} ended ${env.Status} on Airflow ${env.AirflowVersion}, not AVAILABLE on ${version}: ${JSON.stringify(env.LastUpdate)}`,
      )
    }
    if (!seen.some((s) => s.status === 'CREATING_SNAPSHOT')) {
      throw new Error(`${name} never read CREATING_SNAPSHOT: ${trace}`)
    }
    return seconds
  }

  const a = await create('bench-a')
  // A package with dependencies of its own that the runtime lacks.
  const cold = 'pyjokes==0.8.3\nemoji==2.14.1\ntoolz==1.0.0\n'
  record(
    'new requirements.txt → AVAILABLE, cold uv cache',
    await timedUpdate(a, 'bench-a', 'r1.txt', cold, 'AVAILABLE'),
  )
  record(
    'new requirements.txt → AVAILABLE, warm uv cache (new layer)',
    await timedUpdate(a, 'bench-a', 'r2.txt', `${cold}# a new layer\n`, 'AVAILABLE'),
  )
  const b = await create('bench-b')
  record(
    'same requirements.txt on a second environment → AVAILABLE (layer shared)',
    await timedUpdate(b, 'bench-b', 'r1.txt', cold, 'AVAILABLE'),
  )
  record(
    'requirements.txt that cannot install → UPDATE_FAILED',
    await timedUpdate(
      a,
      'bench-a',
      'bad.txt',
      'no-such-package-airdock-bench==1.0\n',
      'UPDATE_FAILED',
    ),
  )
  // The version change with no other environment running (as in the integration test).
  await remove(a, 'bench-a')
  await remove(b, 'bench-b')
  const v = await create('bench-version', { AirflowVersion: '3.2.1' })
  record(
    'in-place Airflow version upgrade 3.2.1 → 3.3.2 → AVAILABLE',
    await timedVersionChange(v, 'bench-version', '3.3.2'),
    MWAA_VERSION_CHANGE,
  )
  console.log('\n' + rows.join('\n'))
} finally {
  await t?.destroy()
  await rm(cache, { recursive: true, force: true })
}
