/**
 * End to end, as an MWAA user: the real AWS CLI and boto3 drive airdock against a real
 * `mw1.micro` environment running Apache Airflow. The DAGs include, unmodified, DAG files that
 * ship inside the `apache-airflow` package, plus the project's example ETL DAG.
 *
 * Also: a component killed with SIGKILL comes back; the control plane restarted in the middle
 * of a DAG run, with the run finishing and its history intact; update; delete.
 */
import { copyFile, cp, mkdir } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { boto3, mwaa } from '../support/aws-cli.js'
import { signedFetch } from '../support/credentials.js'
import {
  repoRoot,
  sharedRuntimeDir,
  startTestControlPlane,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'

const NAME = 'e2e-micro'
const REGION = 'us-east-1'

let t: TestControlPlane
let endpoint: string
let runCounter = 0

async function getEnvironment(): Promise<Record<string, unknown>> {
  const res = await mwaa(endpoint, REGION, ['get-environment', '--name', NAME])
  if (res.code !== 0) throw new Error(res.stderr)
  return (res.json as { Environment: Record<string, unknown> }).Environment
}

async function waitForStatus(
  status: string,
  timeoutMs = 240_000,
): Promise<Record<string, unknown>> {
  return waitFor(
    `${NAME} ${status}`,
    async () => {
      const env = await getEnvironment()
      if (env.Status === 'CREATE_FAILED') throw new Error(JSON.stringify(env.LastUpdate))
      return env.Status === status ? env : undefined
    },
    timeoutMs,
  )
}

async function invoke(
  method: string,
  apiPath: string,
  body?: unknown,
): Promise<{ code: number; json: unknown; stderr: string }> {
  const args = ['invoke-rest-api', '--name', NAME, '--method', method, '--path', apiPath]
  if (body !== undefined) args.push('--body', JSON.stringify(body))
  const res = await mwaa(endpoint, REGION, args)
  return { code: res.code, json: res.json, stderr: res.stderr }
}

async function triggerAndWait(dagId: string, timeoutMs = 240_000): Promise<string> {
  await waitFor(
    `${dagId} listed`,
    async () => {
      const r = await invoke('GET', `/dags/${dagId}`)
      return r.code === 0
    },
    60_000,
  )
  expect((await invoke('PATCH', `/dags/${dagId}`, { is_paused: false })).code).toBe(0)
  // MWAA limits InvokeRestApi's Path to 64 characters, so runs get short ids.
  const runId = `r${++runCounter}`
  const run = await invoke('POST', `/dags/${dagId}/dagRuns`, {
    logical_date: null,
    dag_run_id: runId,
  })
  expect(run.code, run.stderr).toBe(0)
  expect((run.json as { RestApiResponse: { dag_run_id: string } }).RestApiResponse.dag_run_id).toBe(
    runId,
  )
  await waitFor(
    `${dagId} run ${runId} success`,
    async () => {
      const r = await invoke('GET', `/dags/${dagId}/dagRuns/${runId}`)
      const state = (r.json as { RestApiResponse?: { state?: string } } | undefined)
        ?.RestApiResponse?.state
      if (state === 'failed') throw new Error(`${dagId} run failed`)
      return state === 'success'
    },
    timeoutMs,
    2_000,
  )
  return runId
}

beforeAll(async () => {
  t = await startTestControlPlane()
  endpoint = t.cp.endpoint
  const runtime = await t.cp.runtimes.find('3.3.2')
  if (!runtime) {
    throw new Error(
      `the Airflow 3.3.2 runtime is not built in ${sharedRuntimeDir} (run make setup)`,
    )
  }
  const sitePackages = path.join(runtime.dir, 'lib', 'python3.12', 'site-packages')
  // The bucket: a folder bucket holding the example ETL and two DAG files shipped in apache-airflow.
  const dags = path.join(t.settings.dataDir, 'buckets', 'e2e-bucket', 'dags')
  await mkdir(dags, { recursive: true })
  await cp(path.join(repoRoot, 'examples', 'dags'), dags, { recursive: true })
  await copyFile(
    path.join(sitePackages, 'airflow', 'example_dags', 'tutorial_taskflow_api.py'),
    path.join(dags, 'tutorial_taskflow_api.py'),
  )
  await copyFile(
    path.join(
      sitePackages,
      'airflow',
      'providers',
      'standard',
      'example_dags',
      'example_bash_operator.py',
    ),
    path.join(dags, 'example_bash_operator.py'),
  )
  await copyFile(
    path.join(repoRoot, 'test', 'fixtures', 'dags', 'slow_pipeline.py'),
    path.join(dags, 'slow_pipeline.py'),
  )
})

afterAll(async () => {
  await t?.destroy()
})

describe('an mw1.micro environment driven by the AWS CLI and boto3', () => {
  it('creates the environment and reports CREATING, then AVAILABLE', async () => {
    const res = await mwaa(endpoint, REGION, [
      'create-environment',
      '--name',
      NAME,
      '--environment-class',
      'mw1.micro',
      '--execution-role-arn',
      'arn:aws:iam::000000000000:role/airflow-execution',
      '--source-bucket-arn',
      'arn:aws:s3:::e2e-bucket',
      '--dag-s3-path',
      'dags',
      '--network-configuration',
      'SubnetIds=subnet-a,subnet-b,SecurityGroupIds=sg-1',
      '--tags',
      'team=data,stage=test',
    ])
    expect(res.code, res.stderr).toBe(0)
    expect((res.json as { Arn: string }).Arn).toBe(
      `arn:aws:airflow:${REGION}:000000000000:environment/${NAME}`,
    )
    expect((await getEnvironment()).Status).toBe('CREATING')
    const env = await waitForStatus('AVAILABLE')
    expect(env).toMatchObject({
      Name: NAME,
      EnvironmentClass: 'mw1.micro',
      AirflowVersion: '3.3.2',
      Schedulers: 1,
      MinWorkers: 1,
      MaxWorkers: 1,
      MinWebservers: 1,
      MaxWebservers: 1,
      LastUpdate: { Status: 'SUCCESS', Source: 'CreateEnvironment' },
      Tags: { team: 'data', stage: 'test' },
    })
    expect(typeof env.CreatedAt).toBe('number')
    expect(env.WebserverUrl).toMatch(/^[a-f0-9]+\.airflow\.localhost:\d+$/)
    expect(env.CeleryExecutorQueue).toBeUndefined()
    // WebserverUrl reaches the Airflow UI through the gateway.
    const ui = await fetch(`http://127.0.0.1:${String(env.WebserverUrl).split(':')[1]}/`)
    expect(ui.status).toBe(200)
    expect(ui.headers.get('content-type')).toContain('text/html')
    expect(await ui.text()).toContain('Airflow')
  })

  it('shows its components through the airdock extension; only a web login token signs in to Airflow', async () => {
    const status = (await (
      await signedFetch(`${endpoint}/airdock/v1/environments/${NAME}`)
    ).json()) as {
      components: { name: string; phase: string; healthy?: boolean }[]
    }
    expect(status.components.map((c) => c.name).sort()).toEqual([
      'api-server-1',
      'dag-processor-1',
      'gateway-1',
      'scheduler-1',
      'triggerer-1',
    ])
    expect(status.components.every((c) => c.phase === 'running' && c.healthy === true)).toBe(true)
    const token = (await mwaa(endpoint, REGION, ['create-web-login-token', '--name', NAME]))
      .json as { WebToken: string; WebServerHostname: string; IamIdentity: string }
    expect(token.IamIdentity).toBe('user/admin')
    const port = token.WebServerHostname.split(':')[1]
    // Airflow's password sign-in is closed.
    const password = await fetch(`http://127.0.0.1:${port}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin' }),
    })
    expect(password.status).toBe(403)
    const login = (webToken: string) =>
      fetch(`http://127.0.0.1:${port}/pluginsv2/aws_mwaa/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: webToken }).toString(),
        redirect: 'manual',
      })
    const first = await login(token.WebToken)
    expect(first.status).toBe(302)
    const cookie = /^_token=([^;]+)/.exec(first.headers.get('set-cookie') ?? '')?.[1]
    expect(cookie).toBeTruthy()
    const dags = await fetch(`http://127.0.0.1:${port}/api/v2/dags?limit=1`, {
      headers: { cookie: `_token=${cookie}` },
    })
    expect(dags.status).toBe(200)
    expect((await fetch(`http://127.0.0.1:${port}/api/v2/dags?limit=1`)).status).toBe(401)
    // Single use: the same token a second time is refused.
    expect((await login(token.WebToken)).status).toBe(403)
  })

  it('lists environments with paging and tags the environment (boto3)', async () => {
    const out = (await boto3(
      endpoint,
      REGION,
      `
import boto3, json, os
from botocore.config import Config
c = boto3.client('mwaa', endpoint_url=os.environ['ENDPOINT'], region_name=os.environ['REGION'], config=Config(inject_host_prefix=False))
for i in range(3):
    try:
        c.create_environment(Name='page-%d' % i, ExecutionRoleArn='arn:aws:iam::000000000000:role/r', SourceBucketArn='arn:aws:s3:::e2e-bucket', DagS3Path='no-dags-here', NetworkConfiguration={'SubnetIds': ['subnet-a', 'subnet-b'], 'SecurityGroupIds': ['sg-1']}, EnvironmentClass='mw1.micro')
    except Exception as e:
        print(json.dumps({'error': str(e)})); raise
first = c.list_environments(MaxResults=2)
pages = [p['Environments'] for p in c.get_paginator('list_environments').paginate(PaginationConfig={'PageSize': 2})]
arn = c.get_environment(Name='${NAME}')['Environment']['Arn']
c.tag_resource(ResourceArn=arn, Tags={'owner': 'airdock'})
c.untag_resource(ResourceArn=arn, tagKeys=['stage'])
tags = c.list_tags_for_resource(ResourceArn=arn)['Tags']
for i in range(3):
    c.delete_environment(Name='page-%d' % i)
print(json.dumps({'first': first['Environments'], 'hasNext': 'NextToken' in first, 'pages': pages, 'tags': tags}))
`,
    )) as { first: string[]; hasNext: boolean; pages: string[][]; tags: Record<string, string> }
    expect(out.first).toEqual([NAME, 'page-0'])
    expect(out.hasNext).toBe(true)
    expect(out.pages).toEqual([
      [NAME, 'page-0'],
      ['page-1', 'page-2'],
    ])
    expect(out.tags).toEqual({ team: 'data', owner: 'airdock' })
  })

  it('runs DAGs through InvokeRestApi: the example ETL and the DAGs shipped with Airflow', async () => {
    const dags = await invoke('GET', '/dags')
    expect(dags.code, dags.stderr).toBe(0)
    const runId = await triggerAndWait('daily_sales_etl')
    const tis = await invoke('GET', `/dags/daily_sales_etl/dagRuns/${runId}/taskInstances`)
    const instances = (
      tis.json as { RestApiResponse: { task_instances: { task_id: string; state: string }[] } }
    ).RestApiResponse.task_instances
    expect(instances.map((ti) => [ti.task_id, ti.state]).sort()).toEqual([
      ['extract', 'success'],
      ['load', 'success'],
      ['report', 'success'],
      ['transform', 'success'],
    ])
    await triggerAndWait('tutorial_taskflow_api')
    await triggerAndWait('example_bash_operator')
  })

  it("answers an Airflow 404 with RestApiClientException carrying Airflow's status and body", async () => {
    const res = await invoke('GET', '/dags/no_such_dag')
    expect(res.code).not.toBe(0)
    expect(res.stderr).toContain('RestApiClientException')
  })

  it('restarts a component killed with SIGKILL and returns to AVAILABLE', async () => {
    const id = String((await getEnvironment()).WebserverUrl).split('.')[0]!
    const scheduler = t.cp.driver.observe(id).find((c) => c.name === 'scheduler-1')!
    expect(scheduler.pid).toBeGreaterThan(0)
    process.kill(scheduler.pid!, 'SIGKILL')
    await waitFor(
      'scheduler restarted',
      () => {
        const now = t.cp.driver.observe(id).find((c) => c.name === 'scheduler-1')
        return now && now.pid !== scheduler.pid && now.phase === 'running'
      },
      60_000,
    )
    await waitForStatus('AVAILABLE', 120_000)
  })

  it('keeps a DAG run going across a control-plane restart, with its history intact', async () => {
    const id = String((await getEnvironment()).WebserverUrl).split('.')[0]!
    const before = t.cp.driver.observe(id).map((c) => [c.name, c.pid])
    expect((await invoke('PATCH', '/dags/slow_pipeline', { is_paused: false })).code).toBe(0)
    const runId = 'slow1'
    expect(
      (
        await invoke('POST', '/dags/slow_pipeline/dagRuns', {
          logical_date: null,
          dag_run_id: runId,
        })
      ).code,
    ).toBe(0)
    await waitFor(
      'wait task running',
      async () => {
        const r = await invoke('GET', `/dags/slow_pipeline/dagRuns/${runId}/taskInstances/wait`)
        return (
          (r.json as { RestApiResponse?: { state?: string } } | undefined)?.RestApiResponse
            ?.state === 'running'
        )
      },
      120_000,
    )
    const gatewayPort = String((await getEnvironment()).WebserverUrl).split(':')[1]
    await t.restart({
      // With the control plane down, the Airflow UI and API stay reachable through the gateway.
      whileStopped: async () => {
        const health = await fetch(`http://127.0.0.1:${gatewayPort}/api/v2/monitor/health`)
        expect(health.status).toBe(200)
        expect(((await health.json()) as { scheduler: { status: string } }).scheduler.status).toBe(
          'healthy',
        )
      },
    })
    endpoint = t.cp.endpoint
    // The components were adopted, not restarted.
    expect(t.cp.driver.observe(id).map((c) => [c.name, c.pid])).toEqual(before)
    await waitFor(
      'slow_pipeline success',
      async () => {
        const r = await invoke('GET', `/dags/slow_pipeline/dagRuns/${runId}`)
        const state = (r.json as { RestApiResponse?: { state?: string } } | undefined)
          ?.RestApiResponse?.state
        if (state === 'failed') throw new Error('slow_pipeline failed')
        return state === 'success'
      },
      180_000,
      2_000,
    )
    const history = await invoke('GET', '/dags/~/dagRuns')
    const runs = (
      history.json as { RestApiResponse: { dag_runs: { dag_id: string; state: string }[] } }
    ).RestApiResponse.dag_runs
    expect(
      runs
        .filter((r) => r.state === 'success')
        .map((r) => r.dag_id)
        .sort(),
    ).toEqual(
      expect.arrayContaining([
        'daily_sales_etl',
        'example_bash_operator',
        'slow_pipeline',
        'tutorial_taskflow_api',
      ]),
    )
    expect((await getEnvironment()).Status).toBe('AVAILABLE')
  })

  it('comes back with its DAG run history after the control plane stopped everything', async () => {
    const id = String((await getEnvironment()).WebserverUrl).split('.')[0]!
    const pids = t.cp.driver.observe(id).map((c) => c.pid!)
    await t.restart({ stopComponents: true })
    endpoint = t.cp.endpoint
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
    await waitForStatus('AVAILABLE')
    const history = await invoke('GET', '/dags/~/dagRuns')
    const runs = (history.json as { RestApiResponse: { dag_runs: { dag_run_id: string }[] } })
      .RestApiResponse.dag_runs
    expect(runs.map((r) => r.dag_run_id)).toEqual(
      expect.arrayContaining(['r1', 'r2', 'r3', 'slow1']),
    )
  })

  it('applies an update (AirflowConfigurationOptions) and returns to AVAILABLE', async () => {
    const res = await mwaa(endpoint, REGION, [
      'update-environment',
      '--name',
      NAME,
      '--airflow-configuration-options',
      'core.default_task_retries=1',
    ])
    expect(res.code, res.stderr).toBe(0)
    const env = await waitForStatus('AVAILABLE')
    expect(env.AirflowConfigurationOptions).toEqual({ 'core.default_task_retries': '1' })
    expect(env.LastUpdate).toMatchObject({ Status: 'SUCCESS', Source: 'UpdateEnvironment' })
  })

  it('deletes the environment: DELETING → DELETED → ResourceNotFoundException', async () => {
    const id = String((await getEnvironment()).WebserverUrl).split('.')[0]!
    expect((await mwaa(endpoint, REGION, ['delete-environment', '--name', NAME])).code).toBe(0)
    await waitFor('DELETED', async () => (await getEnvironment()).Status === 'DELETED', 120_000)
    const again = await mwaa(endpoint, REGION, ['delete-environment', '--name', NAME])
    expect(again.stderr).toContain('DELETED status cannot be deleted')
    expect(t.cp.driver.observe(id)).toEqual([])
    await waitFor(
      '404',
      async () => {
        const r = await mwaa(endpoint, REGION, ['get-environment', '--name', NAME])
        return r.code !== 0 && r.stderr.includes('ResourceNotFoundException')
      },
      30_000,
    )
  })
})
