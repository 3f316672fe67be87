/**
 * Access control and encryption on real Airflow (issue 4), as users meet them:
 *
 * - boto3 and the AWS CLI with the credentials file the control plane wrote; a second user with
 *   a read-only policy (made with `airdock iam`) is refused CreateEnvironment and web login on
 *   an environment its policy does not name, and gets the highest Airflow role it is allowed;
 * - a real browser (Debian's chromium through playwright-core) follows a web login link into the
 *   Airflow UI as Viewer, sees the DAG list, and cannot trigger a DAG run;
 * - the CLI endpoint runs `dags list` and refuses `db reset` and `dags list; touch …`;
 * - InvokeRestApi with the caller's role and MWAA's rate limit;
 * - a PRIVATE_ONLY environment's web server cannot be reached from a second network namespace
 *   that reaches a PUBLIC_ONLY one;
 * - the audit trail (kept across a restart), no secret in the clear in the data dir, the
 *   control-plane database or any log, and a deleted KMS key reported clearly.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, readdir, readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Credentials } from '../../src/iam/signed-fetch.js'
import { boto3, mwaa } from '../support/aws-cli.js'
import {
  repoRoot,
  startTestControlPlane,
  testEnvironmentVariables,
  waitFor,
  type TestControlPlane,
} from '../support/control-plane.js'
import { adminCredentials, signedFetch } from '../support/credentials.js'
import { environmentClient } from '../support/mwaa-client.js'
import { createTestNetwork, type TestNetwork } from '../support/netns.js'

const execFileAsync = promisify(execFile)
const REGION = 'us-east-1'
const PUB = 'pub-env'
const PRIV = 'priv-env'
const DAG_ID = 'daily_sales_etl'
/** A secret-looking AirflowConfigurationOptions value that must never be stored in the clear. */
const OPTION_SECRET = `opt-secret-${randomBytes(8).toString('hex')}`

let t: TestControlPlane
let net: TestNetwork
let browser: Browser | undefined
let logFile: string
let reader: Credentials
let keyArn: string
/** Every token handed out in this file: none may appear in the audit trail or any log. */
const issuedTokens: string[] = []

const pub = environmentClient(() => t.cp.endpoint, PUB)
const priv = environmentClient(() => t.cp.endpoint, PRIV)

/** Runs the `airdock` CLI against the test control plane. */
async function airdock(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/cli.ts'), ...args],
    { cwd: repoRoot, env: t.variables },
  )
  return stdout
}

/** `host:port` → the loopback port. */
function portOf(webServerHostname: string): number {
  return Number(webServerHostname.split(':')[1])
}

/** Signs in through the gateway's MWAA login route. @returns the `_token` cookie or the status */
async function redeem(port: number, webToken: string): Promise<{ status: number; jwt?: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/pluginsv2/aws_mwaa/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: webToken }).toString(),
    redirect: 'manual',
  })
  const jwt = /^_token=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1]
  return { status: res.status, ...(jwt ? { jwt } : {}) }
}

/** The claims of a JWT (not verified: Airflow does that). */
function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >
}

const READ_ONLY_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: ['airflow:Get*', 'airflow:List*'], Resource: '*' },
    {
      Effect: 'Allow',
      Action: ['airflow:CreateWebLoginToken', 'airflow:InvokeRestApi'],
      Resource: `arn:aws:airflow:${REGION}:000000000000:role/${PUB}/Viewer`,
    },
  ],
}

beforeAll(async () => {
  net = await createTestNetwork()
  const variables = await testEnvironmentVariables({
    AIRDOCK_PUBLIC_ADDRESS: net.hostAddress,
    AIRDOCK_LOG_LEVEL: 'debug',
  })
  logFile = path.join(variables.AIRDOCK_DATA_DIR!, 'control-plane.log')
  t = await startTestControlPlane(variables, { logFile })
  const dags = path.join(t.settings.dataDir, 'buckets', 'access-bucket', 'dags')
  await mkdir(path.join(dags, 'data'), { recursive: true })
  await copyFile(
    path.join(repoRoot, 'examples/dags/daily_sales_etl.py'),
    path.join(dags, 'daily_sales_etl.py'),
  )
  await copyFile(
    path.join(repoRoot, 'examples/dags/data/orders.csv'),
    path.join(dags, 'data/orders.csv'),
  )
  keyArn = (
    JSON.parse(await airdock('kms', 'create-key', '--description', 'priv-env secrets')) as {
      KeyMetadata: { Arn: string }
    }
  ).KeyMetadata.Arn
  // boto3 with the credentials file the control plane wrote, unmodified.
  const created = (await boto3(
    t.cp.endpoint,
    REGION,
    `
import boto3, json, os
from botocore.config import Config
c = boto3.client('mwaa', endpoint_url=os.environ['ENDPOINT'], region_name=os.environ['REGION'], config=Config(inject_host_prefix=False))
common = dict(ExecutionRoleArn='arn:aws:iam::000000000000:role/r', SourceBucketArn='arn:aws:s3:::access-bucket', DagS3Path='dags', NetworkConfiguration={'SubnetIds': ['subnet-a', 'subnet-b'], 'SecurityGroupIds': ['sg-1']}, EnvironmentClass='mw1.micro')
a = c.create_environment(Name='${PUB}', WebserverAccessMode='PUBLIC_ONLY', AirflowConfigurationOptions={'smtp.smtp_password': '${OPTION_SECRET}'}, **common)
b = c.create_environment(Name='${PRIV}', WebserverAccessMode='PRIVATE_ONLY', KmsKey='${keyArn}', **common)
print(json.dumps([a['Arn'], b['Arn']]))
`,
  )) as string[]
  expect(created).toEqual([
    `arn:aws:airflow:${REGION}:000000000000:environment/${PUB}`,
    `arn:aws:airflow:${REGION}:000000000000:environment/${PRIV}`,
  ])
  await pub.waitForStatus('AVAILABLE')
  await priv.waitForStatus('AVAILABLE')
  await airdock('iam', 'create-user', 'reader')
  await airdock('iam', 'put-user-policy', 'reader', 'ReadOnly', JSON.stringify(READ_ONLY_POLICY))
  const key = JSON.parse(await airdock('iam', 'create-access-key', 'reader')) as {
    AccessKey: { AccessKeyId: string; SecretAccessKey: string }
  }
  reader = {
    accessKeyId: key.AccessKey.AccessKeyId,
    secretAccessKey: key.AccessKey.SecretAccessKey,
  }
})

afterAll(async () => {
  await browser?.close()
  await t?.destroy()
  await net?.destroy()
})

describe('access control on real Airflow', () => {
  it('writes the administrator key to a 0600 credentials file that the AWS CLI uses unmodified', async () => {
    const file = path.join(t.settings.dataDir, 'credentials')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(await readFile(file, 'utf8')).toMatch(/^\[airdock\]$/m)
    const listed = await mwaa(t.cp.endpoint, REGION, ['list-environments'])
    expect(listed.code).toBe(0)
    expect((listed.json as { Environments: string[] }).Environments).toEqual([PUB, PRIV])
  })

  it('refuses a read-only user what its policy does not allow (boto3), and maps roles like MWAA', async () => {
    const out = (await boto3(
      t.cp.endpoint,
      REGION,
      `
import boto3, json, os
from botocore.config import Config
c = boto3.client('mwaa', endpoint_url=os.environ['ENDPOINT'], region_name=os.environ['REGION'], config=Config(inject_host_prefix=False, retries={'max_attempts': 1}))
def attempt(f):
    try:
        return {'ok': f()}
    except c.exceptions.ClientError as e:
        return {'error': e.response['Error']['Code'], 'message': e.response['Error'].get('Message', '')}
result = {
  'list': attempt(lambda: c.list_environments()['Environments']),
  'get': attempt(lambda: c.get_environment(Name='${PUB}')['Environment']['Status']),
  'create': attempt(lambda: c.create_environment(Name='sneaky', ExecutionRoleArn='arn:aws:iam::000000000000:role/r', SourceBucketArn='arn:aws:s3:::b', DagS3Path='dags', NetworkConfiguration={'SubnetIds': ['subnet-a', 'subnet-b'], 'SecurityGroupIds': ['sg-1']})['Arn']),
  'loginPriv': attempt(lambda: c.create_web_login_token(Name='${PRIV}')['WebToken']),
  'loginPub': attempt(lambda: c.create_web_login_token(Name='${PUB}')),
  'cliToken': attempt(lambda: c.create_cli_token(Name='${PUB}')['CliToken']),
}
print(json.dumps(result))
`,
      reader,
    )) as Record<string, { ok?: any; error?: string; message?: string }>
    expect(out.list).toEqual({ ok: [PUB, PRIV] })
    expect(out.get).toEqual({ ok: 'AVAILABLE' })
    expect(out.create!.error).toBe('AccessDeniedException')
    expect(out.create!.message).toContain('airflow:CreateEnvironment')
    expect(out.loginPriv!.error).toBe('AccessDeniedException')
    expect(out.cliToken!.error).toBe('AccessDeniedException')
    const login = out.loginPub!.ok as {
      WebToken: string
      WebServerHostname: string
      IamIdentity: string
    }
    expect(login.IamIdentity).toBe('user/reader')
    issuedTokens.push(login.WebToken)
    const session = await redeem(portOf(login.WebServerHostname), login.WebToken)
    expect(session.status).toBe(302)
    expect(claimsOf(session.jwt!)).toMatchObject({ sub: 'user/reader', role: 'VIEWER' })
    expect((await redeem(portOf(login.WebServerHostname), login.WebToken)).status).toBe(403)
    expect((await mwaa(t.cp.endpoint, REGION, ['list-environments'])).code).toBe(0)
    const sneaky = await mwaa(t.cp.endpoint, REGION, ['get-environment', '--name', 'sneaky'])
    expect(sneaky.stderr).toContain('ResourceNotFoundException')

    // Every role on the environment but an explicit Deny on Admin: the highest left is Op.
    await airdock(
      'iam',
      'put-user-policy',
      'reader',
      'Operator',
      JSON.stringify({
        Statement: [
          {
            Effect: 'Allow',
            Action: 'airflow:CreateWebLoginToken',
            Resource: `arn:aws:airflow:${REGION}:000000000000:role/${PUB}/*`,
          },
          { Effect: 'Deny', Action: 'airflow:*', Resource: 'arn:aws:airflow:*:*:role/*/Admin' },
        ],
      }),
    )
    const op = await mwaa(t.cp.endpoint, REGION, ['create-web-login-token', '--name', PUB], reader)
    const opToken = op.json as { WebToken: string; WebServerHostname: string }
    issuedTokens.push(opToken.WebToken)
    const opSession = await redeem(portOf(opToken.WebServerHostname), opToken.WebToken)
    expect(claimsOf(opSession.jwt!)).toMatchObject({ role: 'OP' })
    await airdock('iam', 'delete-user-policy', 'reader', 'Operator')
  })

  it('signs a real browser into the Airflow UI as Viewer, which cannot trigger a DAG run', async () => {
    const login = (
      await mwaa(t.cp.endpoint, REGION, ['create-web-login-token', '--name', PUB], reader)
    ).json as { WebToken: string; WebServerHostname: string }
    issuedTokens.push(login.WebToken)
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-dev-shm-usage'],
    })
    const page = await browser.newPage()
    await page.goto(
      `http://${login.WebServerHostname}/aws_mwaa/aws-console-sso?login=true#${login.WebToken}`,
    )
    await page.waitForURL(`http://${login.WebServerHostname}/`, { timeout: 30_000 })
    await page.goto(`http://${login.WebServerHostname}/dags`)
    await page.getByText(DAG_ID).first().waitFor({ timeout: 60_000 })
    await mkdir(path.join(repoRoot, 'test-results'), { recursive: true })
    await page.screenshot({ path: path.join(repoRoot, 'test-results', 'web-login-viewer.png') })
    // The session is the browser's cookie; Airflow enforces the Viewer role.
    const answers = await page.evaluate(async (dagId) => {
      const list = await fetch('/api/v2/dags?limit=5')
      const trigger = await fetch(`/api/v2/dags/${dagId}/dagRuns`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ logical_date: null }),
      })
      return { list: list.status, trigger: trigger.status }
    }, DAG_ID)
    expect(answers).toEqual({ list: 200, trigger: 403 })
    // The token left the address bar (and so the history).
    expect(page.url()).not.toContain(login.WebToken)
  })

  it('runs allowed Airflow CLI commands and refuses the rest without running them', async () => {
    const token = (await mwaa(t.cp.endpoint, REGION, ['create-cli-token', '--name', PUB])).json as {
      CliToken: string
      WebServerHostname: string
    }
    issuedTokens.push(token.CliToken)
    const cli = (command: string, bearer = token.CliToken) =>
      fetch(`http://${token.WebServerHostname.replace(/^[^:]+/, '127.0.0.1')}/aws_mwaa/cli`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'text/plain' },
        body: command,
      })
    const list = await cli('dags list -o plain')
    expect(list.status).toBe(200)
    const body = (await list.json()) as { stdout: string; stderr: string }
    expect(Buffer.from(body.stdout, 'base64').toString('utf8')).toContain(DAG_ID)
    const reset = await cli('db reset')
    expect(reset.status).toBe(400)
    expect(((await reset.json()) as { message: string }).message).toContain('db reset')
    const marker = path.join(t.settings.dataDir, `injected-${randomBytes(4).toString('hex')}`)
    const injected = await cli(`dags list; touch ${marker}`)
    expect(injected.status).toBe(400)
    expect(existsSync(marker)).toBe(false)
    expect((await cli('dags list', 'not-a-token')).status).toBe(403)
  })

  it("runs InvokeRestApi with the caller's Airflow role, within MWAA's rate limit", async () => {
    const asReader = await mwaa(
      t.cp.endpoint,
      REGION,
      ['invoke-rest-api', '--name', PUB, '--method', 'GET', '--path', '/dags'],
      reader,
    )
    expect(asReader.code).toBe(0)
    const trigger = await mwaa(
      t.cp.endpoint,
      REGION,
      [
        'invoke-rest-api',
        '--name',
        PUB,
        '--method',
        'POST',
        '--path',
        `/dags/${DAG_ID}/dagRuns`,
        '--body',
        '{"logical_date": null}',
      ],
      reader,
    )
    expect(trigger.stderr).toContain('RestApiClientException')
    expect(trigger.stderr).toContain('403')
    // 25 calls at once: the per-environment bucket (10 per second) lets about 10 through.
    const statuses = await Promise.all(
      Array.from({ length: 25 }, () =>
        signedFetch(`${t.cp.endpoint}/restapi/${PUB}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ Path: '/version', Method: 'GET' }),
        }).then((r) => ({ status: r.status, type: r.headers.get('x-amzn-errortype') })),
      ),
    )
    const throttled = statuses.filter((s) => s.status === 429)
    expect(throttled.length).toBeGreaterThanOrEqual(10)
    expect(throttled.every((s) => s.type === 'ThrottlingException')).toBe(true)
    expect(statuses.filter((s) => s.status === 200).length).toBeGreaterThanOrEqual(5)
  })

  it('serves a PUBLIC_ONLY web server on the public address and a PRIVATE_ONLY one only privately', async () => {
    const pubPort = portOf((await pub.environment()).WebserverUrl as string)
    const privPort = portOf((await priv.environment()).WebserverUrl as string)
    const page = '/aws_mwaa/aws-console-sso?login=true'
    const fromNamespace = {
      pub: await net.fetchFromNamespace(`http://${net.hostAddress}:${pubPort}${page}`),
      priv: await net.fetchFromNamespace(`http://${net.hostAddress}:${privPort}${page}`),
    }
    expect(fromNamespace.pub).toMatchObject({ ok: true, status: 200 })
    expect(fromNamespace.priv.ok).toBe(false)
    // Both still answer on loopback (the private address).
    for (const port of [pubPort, privPort]) {
      expect((await fetch(`http://127.0.0.1:${port}${page}`)).status).toBe(200)
    }
  })

  it('keeps an audit trail of changes and tokens, without secrets, across a restart', async () => {
    await t.restart()
    const events = (
      JSON.parse(await airdock('audit', '--json', '--max-results', '1000')) as {
        Events: Record<string, string>[]
      }
    ).Events
    const admin = `arn:aws:iam::000000000000:user/admin`
    const readerArn = `arn:aws:iam::000000000000:user/reader`
    expect(events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          Principal: admin,
          Action: 'airflow:CreateEnvironment',
          Resource: `arn:aws:airflow:${REGION}:000000000000:environment/${PUB}`,
          Result: 'Success',
          SourceAddress: expect.stringMatching(/127\.0\.0\.1/),
        }),
        expect.objectContaining({
          Principal: readerArn,
          Action: 'airflow:CreateEnvironment',
          Result: 'Failure',
          ErrorCode: 'AccessDeniedException',
        }),
        expect.objectContaining({
          Principal: readerArn,
          Action: 'airflow:CreateWebLoginToken',
          Result: 'Success',
        }),
        expect.objectContaining({ Principal: readerArn, Action: 'airdock:RedeemWebLoginToken' }),
        expect.objectContaining({ Principal: admin, Action: 'airflow:CreateCliToken' }),
        expect.objectContaining({ Principal: admin, Action: 'airdock:RunCliCommand' }),
        expect.objectContaining({ Principal: admin, Action: 'airdock:CreateAccessKey' }),
      ]),
    )
    expect(events.every((e) => typeof e.RequestId === 'string' && e.RequestId.length > 0)).toBe(
      true,
    )
    const text = JSON.stringify(events)
    for (const token of issuedTokens) expect(text).not.toContain(token)
    // Reading the trail is an administrator's action.
    const asReader = await signedFetch(
      `${t.cp.endpoint}/airdock/v1/audit`,
      {},
      { credentials: reader },
    )
    expect(asReader.status).toBe(403)
  })

  it('keeps every secret out of the data dir, the control-plane database and every log', async () => {
    const secrets: Record<string, string> = {
      'reader secret key': reader.secretAccessKey,
      'admin secret key': (await adminCredentials(t.cp.endpoint)).secretAccessKey,
      'AirflowConfigurationOptions value': OPTION_SECRET,
    }
    for (const name of [PUB, PRIV]) {
      const record = (await t.cp.store.get(name))!
      const s = (await t.cp.reconciler.secretsFor(record))!
      Object.assign(secrets, {
        [`${name} fernet key`]: s.fernetKey,
        [`${name} JWT secret`]: s.jwtSecret,
        [`${name} API secret key`]: s.apiSecretKey,
        [`${name} database password`]: s.databasePassword,
        [`${name} broker password`]: s.brokerPassword,
      })
    }
    issuedTokens.forEach((token, i) => (secrets[`issued token ${i + 1}`] = token))
    // The administrator's key is in the credentials file by design (DESIGN.md); nowhere else.
    const credentialsFile = path.join(t.settings.dataDir, 'credentials')
    const db = new pg.Client({ connectionString: t.cp.postgres.adminUrl })
    await db.connect()
    try {
      // Flush PostgreSQL's buffers, so the file scan below sees what the databases hold.
      await db.query('CHECKPOINT')
      const dump: string[] = []
      const control = new pg.Client({ connectionString: t.cp.postgres.controlPlaneUrl })
      await control.connect()
      for (const { name } of (
        await control.query<{ name: string }>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'",
        )
      ).rows) {
        dump.push(JSON.stringify((await control.query(`SELECT * FROM "${name}"`)).rows))
      }
      await control.end()
      expect(dump.length).toBeGreaterThanOrEqual(6)
      const dumpText = dump.join('\n')
      for (const [what, value] of Object.entries(secrets)) {
        expect(dumpText.includes(value), `${what} in the control-plane database`).toBe(false)
      }
    } finally {
      await db.end()
    }
    const found: string[] = []
    let files = 0
    let bytes = 0
    async function scan(dir: string): Promise<void> {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name)
        if (entry.isDirectory()) await scan(full)
        else if (entry.isFile() && full !== credentialsFile) {
          const content = await readFile(full).catch(() => undefined)
          if (!content) continue
          files++
          bytes += content.length
          for (const [what, value] of Object.entries(secrets)) {
            if (content.includes(value)) {
              found.push(`${what} in ${path.relative(t.settings.dataDir, full)}`)
            }
          }
        }
      }
    }
    await scan(t.settings.dataDir)
    console.log(
      `secret scan: ${Object.keys(secrets).length} secrets, ${files} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB (data dir incl. PostgreSQL, logs, pid files) — found: ${found.length}`,
    )
    expect(found).toEqual([])
    // The scan covered the control plane's own (debug) log and the components' logs.
    expect((await stat(logFile)).size).toBeGreaterThan(0)
  })

  it('says clearly when the KMS key of an environment is deleted', async () => {
    await airdock('kms', 'delete-key', keyArn)
    const env = await waitFor(
      `${PRIV} reports its key`,
      async () => {
        const e = await priv.environment()
        return e?.Status === 'UNAVAILABLE' ? e : undefined
      },
      60_000,
    )
    expect(env.LastUpdate.Error.ErrorCode).toBe('KMS_KEY_UNAVAILABLE')
    expect(env.LastUpdate.Error.ErrorMessage).toContain(keyArn)
    expect(env.LastUpdate.Error.ErrorMessage).toContain('deleted')
    const login = await mwaa(t.cp.endpoint, REGION, ['create-web-login-token', '--name', PRIV])
    expect(login.stderr).toContain('ValidationException')
    expect(login.stderr).toContain(keyArn)
    // The other environment is untouched.
    expect((await pub.environment()).Status).toBe('AVAILABLE')
  })
})
