/**
 * An `mw1.small` environment on real Airflow with Celery workers, a Redis broker, two
 * schedulers and two api-servers behind the gateway; its bucket lives on a real S3-compatible
 * server (moto's server mode) started by the test.
 *
 * create → AVAILABLE → DAG listed from S3 → DAG run succeeds on Celery → SIGKILL an api-server
 * while requests flow (the gateway keeps answering) → update MinWorkers (only workers change)
 * → delete (processes stopped, database dropped, folder removed).
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { environmentLayout } from '../../src/airflow/components.js'
import { metadataDatabaseFor } from '../../src/airflow/metadata-database.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import {
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'
import { environmentClient } from '../support/mwaa-client.js'
import { startMotoServer, type MotoServer } from '../support/moto-server.js'

const NAME = 'celery-small'
let t: TestControlPlane
let moto: MotoServer
let s3: S3ObjectStore

const client = environmentClient(() => t.cp.endpoint, NAME)
const { api, environment, waitForStatus } = client
const airflow = client.invokeRestApi

beforeAll(async () => {
  moto = await startMotoServer()
  s3 = new S3ObjectStore({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    accessKeyId: 'test',
    secretAccessKey: 'test',
    forcePathStyle: true,
  })
  await s3.ensureBucket('celery-bucket')
  await s3.put(
    'celery-bucket',
    'dags/daily_sales_etl.py',
    await readFile(path.join(repoRoot, 'examples/dags/daily_sales_etl.py')),
  )
  await s3.put(
    'celery-bucket',
    'dags/data/orders.csv',
    await readFile(path.join(repoRoot, 'examples/dags/data/orders.csv')),
  )
  t = await startTestControlPlane(
    await testEnvironmentVariables({
      AIRDOCK_S3_ENDPOINT: moto.endpoint,
      AIRDOCK_S3_ACCESS_KEY_ID: 'test',
      AIRDOCK_S3_SECRET_ACCESS_KEY: 'test',
    }),
  )
})

afterAll(async () => {
  await t?.destroy()
  await moto?.stop()
})

describe('an mw1.small environment with Celery workers and an S3 bucket', () => {
  it('becomes AVAILABLE with every component of its class', async () => {
    const created = await api('PUT', `/environments/${NAME}`, {
      ExecutionRoleArn: 'arn:aws:iam::000000000000:role/airflow-execution',
      SourceBucketArn: 'arn:aws:s3:::celery-bucket',
      DagS3Path: 'dags',
      NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
      MinWorkers: 1,
      MaxWorkers: 3,
    })
    expect(created.status).toBe(200)
    const env = await waitForStatus('AVAILABLE')
    expect(env).toMatchObject({
      EnvironmentClass: 'mw1.small',
      Schedulers: 2,
      MinWebservers: 2,
      MaxWebservers: 2,
    })
    expect(env.CeleryExecutorQueue).toMatch(/^arn:aws:sqs:us-east-1:000000000000:airflow-celery-/)
    const id = env.WebserverUrl.split('.')[0]
    const names = t.cp.driver
      .observe(id)
      .map((c) => c.name)
      .sort()
    expect(names).toEqual([
      'api-server-1',
      'api-server-2',
      'broker-1',
      'dag-processor-1',
      'gateway-1',
      'scheduler-1',
      'scheduler-2',
      'triggerer-1',
      'worker-1',
    ])
  })

  it('lists a DAG that lands in the S3 bucket and runs it on a Celery worker', async () => {
    await waitFor(
      'DAG listed',
      async () => (await airflow('GET', '/dags/daily_sales_etl')).status === 200,
      60_000,
    )
    const newDag = (
      await readFile(path.join(repoRoot, 'test/fixtures/dags/slow_pipeline.py'), 'utf8')
    )
      .replace('slow_pipeline', 'from_s3_later')
      .replace('sleep 25', 'sleep 1')
    await s3.put('celery-bucket', 'dags/nested/from_s3_later.py', newDag)
    await waitFor(
      'new S3 DAG listed',
      async () => (await airflow('GET', '/dags/from_s3_later')).status === 200,
      60_000,
    )

    expect((await airflow('PATCH', '/dags/daily_sales_etl', { is_paused: false })).status).toBe(200)
    const runId = 'celery1'
    const run = await airflow('POST', '/dags/daily_sales_etl/dagRuns', {
      logical_date: null,
      dag_run_id: runId,
    })
    expect(run.status).toBe(200)
    await waitFor(
      'run success',
      async () => {
        const r = await airflow('GET', `/dags/daily_sales_etl/dagRuns/${runId}`)
        if (r.json.state === 'failed') throw new Error('run failed')
        return r.json.state === 'success'
      },
      240_000,
      2_000,
    )
    const tis = await airflow('GET', `/dags/daily_sales_etl/dagRuns/${runId}/taskInstances`)
    for (const ti of tis.json.task_instances) {
      expect(ti.state).toBe('success')
      expect(ti.hostname).toBeTruthy()
    }
    expect(
      tis.json.task_instances.every(
        (ti: any) => ti.executor === 'CeleryExecutor' || ti.queue === 'default',
      ),
    ).toBe(true)
  })

  it('keeps serving through the gateway when an api-server is killed with SIGKILL', async () => {
    const env = await environment()
    const id = env.WebserverUrl.split('.')[0]
    const victim = t.cp.driver.observe(id).find((c) => c.name === 'api-server-1')!
    const gatewayPort = Number(env.WebserverUrl.split(':')[1])
    process.kill(victim.pid!, 'SIGKILL')
    let failures = 0
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`http://127.0.0.1:${gatewayPort}/api/v2/monitor/health`)
      if (res.status !== 200) failures++
    }
    expect(failures).toBe(0)
    await waitFor(
      'api-server-1 back',
      () => {
        const c = t.cp.driver.observe(id).find((x) => x.name === 'api-server-1')
        return c && c.pid !== victim.pid && c.phase === 'running'
      },
      90_000,
    )
    await waitForStatus('AVAILABLE', 120_000)
  })

  it('reports UNAVAILABLE with the reason while a component keeps crashing, then AVAILABLE again', async () => {
    const id = (await environment()).WebserverUrl.split('.')[0]
    let lastPid: number | undefined
    for (let i = 0; i < 4; i++) {
      const broker = await waitFor(
        'broker-1 running again',
        () => {
          const b = t.cp.driver.observe(id).find((c) => c.name === 'broker-1')
          return b?.pid && b.pid !== lastPid ? b : undefined
        },
        60_000,
        100,
      )
      lastPid = broker.pid
      process.kill(broker.pid!, 'SIGKILL')
    }
    // A component that is down reads UNAVAILABLE at once; one that keeps crashing says so.
    const unavailable = await waitFor(
      'UNAVAILABLE because broker-1 is crash-looping',
      async () => {
        const env = await environment()
        return env.Status === 'UNAVAILABLE' &&
          env.LastUpdate.Error?.ErrorCode === 'COMPONENT_CRASH_LOOPING'
          ? env
          : undefined
      },
      60_000,
      250,
    )
    expect(unavailable.LastUpdate.Error.ErrorMessage).toContain('broker-1 keeps crashing')
    const available = await waitForStatus('AVAILABLE', 180_000)
    expect(available.LastUpdate.Error).toBeUndefined()
  })

  it('adds a worker on MinWorkers 1 → 2 without restarting anything else', async () => {
    const env = await environment()
    const id = env.WebserverUrl.split('.')[0]
    const before = new Map(t.cp.driver.observe(id).map((c) => [c.name, c.pid]))
    const r = await api('PATCH', `/environments/${NAME}`, { MinWorkers: 2 })
    expect(r.status).toBe(200)
    expect((await environment()).Status).toBe('UPDATING')
    await waitForStatus('AVAILABLE')
    const after = new Map(t.cp.driver.observe(id).map((c) => [c.name, c.pid]))
    expect(after.has('worker-2')).toBe(true)
    for (const [name, pid] of before) expect(after.get(name), name).toBe(pid)
  })

  it('deletes the environment: processes stopped, database dropped, folder removed', async () => {
    const env = await environment()
    const id = env.WebserverUrl.split('.')[0]
    const pids = t.cp.driver.observe(id).map((c) => c.pid!)
    expect((await api('DELETE', `/environments/${NAME}`)).status).toBe(200)
    await waitFor('DELETED', async () => (await environment())?.Status === 'DELETED', 180_000)
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
    const client = new pg.Client({ connectionString: t.cp.postgres.adminUrl })
    await client.connect()
    const dbs = await client.query('SELECT datname FROM pg_database WHERE datname = $1', [
      metadataDatabaseFor(id).name,
    ])
    await client.end()
    expect(dbs.rowCount).toBe(0)
    expect(
      existsSync(environmentLayout(path.join(t.settings.dataDir, 'environments'), id).homeDir),
    ).toBe(false)
  })
})
