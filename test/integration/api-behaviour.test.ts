/**
 * The MWAA API against the real service, store and reconciler: bad requests change nothing,
 * state rules (duplicate name, update while CREATING or CREATE_FAILED, delete of DELETED),
 * host prefixes, and CREATE_FAILED with the reason and everything cleaned up — forced here by
 * a runtime that cannot be built (a Python interpreter that does not exist). Also the endpoint's
 * unauthenticated routes (`/healthz`, `/`) and what the AWS CLI is told when it calls a service
 * airdock does not serve.
 */
import { execFile } from 'node:child_process'
import http from 'node:http'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import {
  CreateEnvironmentCommand,
  DeleteEnvironmentCommand,
  GetEnvironmentCommand,
  ListEnvironmentsCommand,
  ListTagsForResourceCommand,
  MWAAClient,
  TagResourceCommand,
  UpdateEnvironmentCommand,
} from '@aws-sdk/client-mwaa'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'
import { microEnvironmentBody } from '../support/mwaa-client.js'
import { awsCli, awsClientEnv } from '../support/aws-cli.js'
import { credentialsFileFor, signedFetch } from '../support/credentials.js'
import { readCredentialsFile, signRequest } from '../../src/iam/signed-fetch.js'

let t: TestControlPlane
let emptyRuntimes: string

const validBody = microEnvironmentBody('api-bucket')

async function call(
  method: string,
  pathname: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; type: string | null; json: any }> {
  const res = await signedFetch(`${t.cp.endpoint}${pathname}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  return {
    status: res.status,
    type: res.headers.get('x-amzn-errortype'),
    json: text ? JSON.parse(text) : undefined,
  }
}

/**
 * Every environment as GetEnvironment shows it, without what the reconciler changes while a
 * test runs (the status, and what follows from it: LastUpdate's status and error, and the
 * WebserverUrl, which a CREATE_FAILED environment no longer has).
 */
async function snapshot(): Promise<unknown> {
  const list = await call('GET', '/environments')
  const envs = []
  for (const name of list.json.Environments as string[]) {
    const e = (await call('GET', `/environments/${name}`)).json.Environment
    envs.push({
      ...e,
      Status: undefined,
      WebserverUrl: undefined,
      LastUpdate: { ...e.LastUpdate, Status: undefined, Error: undefined },
    })
  }
  return envs
}

beforeAll(async () => {
  emptyRuntimes = await mkdtemp(path.join(tmpdir(), 'airdock-no-runtime-'))
  t = await startTestControlPlane(
    await testEnvironmentVariables({
      AIRDOCK_RUNTIME_DIR: emptyRuntimes,
      AIRDOCK_PYTHON: '/nonexistent/bin/python3.12',
    }),
  )
  // CreateEnvironment refuses a bucket that does not exist (as MWAA does).
  await t.cp.objectStore.ensureBucket('api-bucket')
})

afterAll(async () => {
  await t?.destroy()
  await rm(emptyRuntimes, { recursive: true, force: true })
})

describe('the MWAA API on the real control plane', () => {
  it('rejects invalid CreateEnvironment requests with a ValidationException naming the field, creating nothing', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['bad', { ...validBody, Schedulers: 6, EnvironmentClass: 'mw1.small' }, /schedulers/i],
      [
        'bad',
        { ...validBody, EnvironmentClass: 'mw1.small', MinWorkers: 5, MaxWorkers: 2 },
        /MinWorkers/,
      ],
      ['bad', { ...validBody, AirflowVersion: '2.0.2' }, /3\.3\.2/],
      ['bad', { ...validBody, EnvironmentClass: 'mw9.huge' }, /EnvironmentClass|environmentClass/],
      ['bad', { ...validBody, ExecutionRoleArn: undefined }, /executionRoleArn|ExecutionRoleArn/],
      [
        'bad',
        {
          ...validBody,
          NetworkConfiguration: { SubnetIds: ['subnet-a'], SecurityGroupIds: ['sg-1'] },
        },
        /subnet/i,
      ],
      ['bad', { ...validBody, Tags: { 'bad\nkey': 'v' } }, /tags/i],
      [
        'bad',
        { ...validBody, RequirementsS3Path: 'requirements.txt' },
        /RequirementsS3ObjectVersion/,
      ],
      ['1-starts-with-digit', validBody, /name/i],
    ]
    for (const [name, body, field] of cases) {
      const res = await call('PUT', `/environments/${name}`, body)
      expect(res.status, JSON.stringify(body)).toBe(400)
      expect(res.type).toBe('ValidationException')
      expect(res.json.message).toMatch(field)
    }
    const malformed = await call('PUT', '/environments/bad', '{"ExecutionRoleArn": ')
    expect(malformed.status).toBe(400)
    expect(malformed.type).toBe('ValidationException')
    expect((await call('GET', '/environments')).json.Environments).toEqual([])
    expect(existsSync(path.join(t.settings.dataDir, 'environments'))).toBe(false)
  })

  it('refuses unsigned, badly signed, expired and unknown-key requests, and they change nothing', async () => {
    const before = await snapshot()
    const url = `${t.cp.endpoint}/environments/sneaky`
    const body = JSON.stringify(validBody)
    const unsigned = await fetch(url, { method: 'PUT', body })
    expect(unsigned.status).toBe(403)
    expect(unsigned.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException')
    const admin = await readCredentialsFile(credentialsFileFor(t.cp.endpoint))
    const wrongSecret = await signedFetch(
      url,
      { method: 'PUT', body },
      { credentials: { ...admin, secretAccessKey: admin.secretAccessKey + 'x' } },
    )
    expect(wrongSecret.status).toBe(403)
    expect(wrongSecret.headers.get('x-amzn-errortype')).toBe('InvalidSignatureException')
    const unknownKey = await signedFetch(
      url,
      { method: 'PUT', body },
      { credentials: { accessKeyId: 'AKIAUNKNOWNUNKNOWN00', secretAccessKey: 'x' } },
    )
    expect(unknownKey.headers.get('x-amzn-errortype')).toBe('UnrecognizedClientException')
    // A signature from 16 minutes ago (more than AWS's 15 minutes of skew).
    const old = await signedFetch(
      url,
      { method: 'PUT', body },
      { signingDate: new Date(Date.now() - 16 * 60_000) },
    )
    expect(old.status).toBe(403)
    expect(await old.text()).toContain('Signature expired')
    // Oversized headers and bodies are refused before anything reads them.
    const bigHeader = await fetch(url, { headers: { 'x-padding': 'x'.repeat(20_000) } })
    expect(bigHeader.status).toBe(431)
    const bigBody = await signedFetch(url, { method: 'PUT', body: 'x'.repeat(2 * 1024 * 1024) })
    expect(bigBody.status).toBe(400)
    expect(await bigBody.text()).toContain('larger than')
    // The same request, correctly signed, reaches the API (the environment does not exist).
    expect((await signedFetch(url, { method: 'GET' })).status).toBe(404)
    expect(await snapshot()).toEqual(before)
    const listed = await call('GET', '/environments')
    expect(listed.json.Environments).not.toContain('sneaky')
  })

  it('accepts requests with and without the api./env. host prefixes', async () => {
    // fetch() cannot set Host; node:http sends what the SDKs send.
    const credentials = await readCredentialsFile(credentialsFileFor(t.cp.endpoint))
    for (const host of ['api.localhost', 'env.localhost', 'localhost']) {
      const url = `http://${host}:${t.settings.port}/environments`
      const headers = await signRequest(url, {}, { credentials, region: 'us-east-1' })
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(
            { host: '127.0.0.1', port: t.settings.port, path: '/environments', headers },
            (res) => {
              res.resume()
              resolve(res.statusCode ?? 0)
            },
          )
          .on('error', reject)
      })
      expect(status, host).toBe(200)
    }
  })

  it('enforces MWAA state rules and a failed request changes nothing', async () => {
    const created = await call('PUT', '/environments/doomed', {
      ...validBody,
      Tags: { team: 'data' },
    })
    expect(created.status).toBe(200)
    expect(created.json.Arn).toBe('arn:aws:airflow:us-east-1:000000000000:environment/doomed')
    const before = await snapshot()

    const duplicate = await call('PUT', '/environments/doomed', validBody)
    expect(duplicate.type).toBe('ValidationException')
    expect(duplicate.json.message).toContain('already exists')

    const env = (await call('GET', '/environments/doomed')).json.Environment
    if (env.Status === 'CREATING') {
      const early = await call('PATCH', '/environments/doomed', { MaxWorkers: 1 })
      expect(early.type).toBe('ValidationException')
      expect(early.json.message).toContain('CREATING status cannot be updated')
    }
    const badUpdate = await call('PATCH', '/environments/doomed', { Schedulers: 9 })
    expect(badUpdate.status).toBe(400)
    const unknownTag = await call(
      'POST',
      `/tags/${encodeURIComponent('arn:aws:airflow:us-east-1:000000000000:environment/nope')}`,
      { Tags: { a: 'b' } },
    )
    expect(unknownTag.status).toBe(404)
    expect(unknownTag.type).toBe('ResourceNotFoundException')
    expect(await snapshot()).toEqual(before)
  })

  it('ends CREATE_FAILED with the reason in LastUpdate.Error and cleans up what it started', async () => {
    const env = await waitFor(
      'CREATE_FAILED',
      async () => {
        const e = (await call('GET', '/environments/doomed')).json.Environment
        return e.Status === 'CREATE_FAILED' ? e : undefined
      },
      60_000,
    )
    expect(env.LastUpdate.Status).toBe('FAILED')
    expect(env.LastUpdate.Error.ErrorCode).toBe('RUNTIME_BUILD_FAILED')
    expect(env.LastUpdate.Error.ErrorMessage).toMatch(
      /runtime could not be built.*(interpreter|Python)/i,
    )
    expect(env.WebserverUrl).toBeUndefined()

    const update = await call('PATCH', '/environments/doomed', { MaxWorkers: 1 })
    expect(update.type).toBe('ValidationException')
    expect(update.json.message).toBe('Environments with CREATE_FAILED status cannot be updated.')

    const invoke = await call('POST', '/restapi/doomed', { Path: '/dags', Method: 'GET' })
    expect(invoke.type).toBe('ValidationException')

    expect(t.cp.driver.groups().filter((g) => g !== 'platform')).toEqual([])
    const environmentsDir = path.join(t.settings.dataDir, 'environments')
    expect(existsSync(environmentsDir) ? await readdir(environmentsDir) : []).toEqual([])
    const client = new pg.Client({ connectionString: t.cp.postgres.adminUrl })
    await client.connect()
    const dbs = await client.query("SELECT datname FROM pg_database WHERE datname LIKE 'airflow_%'")
    await client.end()
    expect(dbs.rows).toEqual([])
  })

  it('answers an unsigned GET /healthz: control plane and database up, environments per status', async () => {
    const res = await fetch(`${t.cp.endpoint}/healthz`)
    expect(res.status).toBe(200)
    const health = await res.json()
    // The same counts as GetEnvironment's statuses (`doomed` is CREATE_FAILED here).
    const statuses: Record<string, number> = {}
    for (const name of (await call('GET', '/environments')).json.Environments as string[]) {
      const status = (await call('GET', `/environments/${name}`)).json.Environment.Status
      statuses[status] = (statuses[status] ?? 0) + 1
    }
    expect(statuses.CREATE_FAILED).toBeGreaterThanOrEqual(1)
    expect(health).toEqual({
      status: 'ok',
      controlPlane: 'up',
      database: 'up',
      environments: statuses,
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    })
    const text = JSON.stringify(health)
    expect(text).not.toContain('doomed')
    expect(text).not.toContain(t.settings.dataDir)

    const page = await fetch(`${t.cp.endpoint}/`, { headers: { accept: 'text/html' } })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(await page.text()).toContain(t.cp.endpoint)
  })

  it('tells the AWS CLI that the service it called is not served by airdock (and what is planned)', async () => {
    const cli = (args: string[]) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        execFile(
          awsCli,
          [...args, '--endpoint-url', t.cp.endpoint],
          { env: awsClientEnv(t.cp.endpoint, 'us-east-1') },
          (err, _stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stderr }),
        )
      })
    const cases: [string[], RegExp][] = [
      [['logs', 'describe-log-groups'], /'logs' \(Amazon CloudWatch Logs\).*planned/],
      [['cloudwatch', 'list-metrics'], /'monitoring' \(Amazon CloudWatch\).*planned/],
      [['sts', 'get-caller-identity'], /'sts' \(AWS Security Token Service\)/],
      [['s3api', 'list-buckets'], /'s3' \(Amazon S3\)/],
    ]
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args)
      expect(code, args.join(' ')).not.toBe(0)
      expect(stderr, args.join(' ')).toContain(
        `An error occurred (ServiceNotServedException) when calling the`,
      )
      expect(stderr, args.join(' ')).toMatch(/which airdock does not serve/)
      expect(stderr, args.join(' ')).toMatch(message)
      expect(stderr).not.toContain('Credential should be scoped')
    }
  })

  it('works with the AWS SDK for JavaScript v3 (disableHostPrefix), typed errors included', async () => {
    const client = new MWAAClient({
      endpoint: t.cp.endpoint,
      region: 'us-east-1',
      disableHostPrefix: true,
      credentials: await readCredentialsFile(credentialsFileFor(t.cp.endpoint)),
    })
    const created = await client.send(
      new CreateEnvironmentCommand({
        Name: 'js-sdk',
        ExecutionRoleArn: validBody.ExecutionRoleArn,
        SourceBucketArn: validBody.SourceBucketArn,
        DagS3Path: 'dags',
        NetworkConfiguration: validBody.NetworkConfiguration,
        EnvironmentClass: 'mw1.micro',
        Tags: { team: 'js' },
      }),
    )
    expect(created.Arn).toBe('arn:aws:airflow:us-east-1:000000000000:environment/js-sdk')
    const got = await client.send(new GetEnvironmentCommand({ Name: 'js-sdk' }))
    expect(got.Environment?.CreatedAt).toBeInstanceOf(Date)
    expect(got.Environment?.NetworkConfiguration?.SubnetIds).toEqual(['subnet-a', 'subnet-b'])
    expect(
      (await client.send(new ListEnvironmentsCommand({ MaxResults: 25 }))).Environments,
    ).toContain('js-sdk')
    await client.send(new TagResourceCommand({ ResourceArn: created.Arn, Tags: { stage: 'test' } }))
    expect(
      (await client.send(new ListTagsForResourceCommand({ ResourceArn: created.Arn }))).Tags,
    ).toEqual({
      team: 'js',
      stage: 'test',
    })
    const error = await client
      .send(new UpdateEnvironmentCommand({ Name: 'js-sdk', Schedulers: 9 }))
      .catch(
        (e: unknown) =>
          e as { name: string; message: string; $metadata: { httpStatusCode: number } },
      )
    expect(error).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } })
    const missing = await client
      .send(new GetEnvironmentCommand({ Name: 'nope' }))
      .catch((e: unknown) => e as { name: string })
    expect((missing as { name: string }).name).toBe('ResourceNotFoundException')
    await client.send(new DeleteEnvironmentCommand({ Name: 'js-sdk' }))
    await waitFor(
      'js-sdk gone',
      async () => (await call('GET', '/environments/js-sdk')).status === 404,
      60_000,
    )
  })

  it('deletes: DELETED, then deleting again is refused, then ResourceNotFoundException', async () => {
    expect((await call('DELETE', '/environments/doomed')).status).toBe(200)
    await waitFor(
      'DELETED',
      async () =>
        (await call('GET', '/environments/doomed')).json.Environment?.Status === 'DELETED',
      30_000,
    )
    const again = await call('DELETE', '/environments/doomed')
    expect(again.type).toBe('ValidationException')
    expect(again.json.message).toContain('DELETED status cannot be deleted')
    await waitFor(
      '404',
      async () => (await call('GET', '/environments/doomed')).type === 'ResourceNotFoundException',
      30_000,
    )
    expect((await call('GET', '/environments')).json.Environments).toEqual([])
  })
})
