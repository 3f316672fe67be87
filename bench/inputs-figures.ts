/**
 * Figures for the issue "requirements.txt, plugins.zip, startup scripts … validated before they
 * can break anything" (printed, not asserted), on one mw1.micro environment:
 *
 *   1. seconds from UpdateEnvironment with a new requirements.txt to AVAILABLE, cold (uv's
 *      download cache empty: a fresh `UV_CACHE_DIR`) and warm (cache filled, new layer), and for
 *      requirements another environment already installed (the layer is reused);
 *   2. seconds from UpdateEnvironment with a requirements.txt that cannot install to
 *      UPDATE_FAILED.
 *
 * Each is printed next to MWAA's documented figure (10–30 minutes for an update) as a ratio.
 *
 *   npx tsx bench/inputs-figures.ts
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  startTestControlPlane,
  testEnvironmentVariables,
  type TestControlPlane,
} from '../test/support/control-plane.js'
import { environmentClient } from '../test/support/mwaa-client.js'

/** MWAA's update time for requirements.txt, lower bound (reference §11): 10 minutes. */
const MWAA_UPDATE_SECONDS = 600
const BUCKET = 'bench-inputs'

let t: TestControlPlane | undefined
const cache = await mkdtemp(path.join(tmpdir(), 'uv-cold-cache-'))
const rows: string[] = []

function record(figure: string, seconds: number): void {
  const line = `${figure}: ${seconds.toFixed(1)} s (${(MWAA_UPDATE_SECONDS / seconds).toFixed(0)}× faster than MWAA's 10 min)`
  rows.push(line)
  console.log(line)
}

try {
  t = await startTestControlPlane(await testEnvironmentVariables({ UV_CACHE_DIR: cache }))
  await t.cp.objectStore.ensureBucket(BUCKET)
  await t.cp.objectStore.put(BUCKET, 'dags/.keep', '')
  const put = async (key: string, body: string) =>
    (await t!.cp.objectStore.put(BUCKET, key, body)).version
  const create = async (name: string) => {
    const c = environmentClient(() => t!.cp.endpoint, name)
    const res = await c.api('PUT', `/environments/${name}`, {
      ExecutionRoleArn: 'arn:aws:iam::000000000000:role/r',
      SourceBucketArn: `arn:aws:s3:::${BUCKET}`,
      DagS3Path: 'dags',
      NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
      EnvironmentClass: 'mw1.micro',
    })
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
  console.log('\n' + rows.join('\n'))
} finally {
  await t?.destroy()
  await rm(cache, { recursive: true, force: true })
}
