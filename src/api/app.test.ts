/**
 * HTTP-layer tests of the MWAA API app: routing, label decoding, body handling and error
 * mapping, against a recording implementation of the service port (the port is the boundary;
 * the real service is tested on its own).
 */
import type { Hono } from 'hono'
import { beforeEach, describe, expect, it } from 'vitest'
import { sampleSpec } from '../../test/support/sample-spec.js'
import {
  AccessDeniedError,
  ResourceNotFoundError,
  RestApiError,
  ValidationError,
} from '../domain/errors.js'
import type {
  CreateEnvironmentRequest,
  EnvironmentServicePort,
  EnvironmentView,
  InvokeRestApiRequest,
  InvokeRestApiResult,
  UpdateEnvironmentRequest,
} from '../services/environment-service-port.js'
import { ADMINISTRATOR_POLICY, IdentityService, type Principal } from '../iam/identity-service.js'
import { parsePolicyDocument } from '../iam/policy.js'
import { createLogger } from '../observability/logger.js'
import type { AuditEvent } from '../store/access-store.js'
import type { AccessIdentity } from './access.js'
import { createApiApp } from './app.js'
import { INTERNAL_ERROR_MESSAGE } from './error-mapper.js'
import { environmentArn } from '../domain/arns.js'

const REGION = 'us-east-1'
const ACCOUNT = '123456789012'
const ARN = environmentArn(REGION, ACCOUNT, 'MyEnv')
const ENCODED_ARN = encodeURIComponent(ARN)
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const CREATE_BODY = {
  ExecutionRoleArn: `arn:aws:iam::${ACCOUNT}:role/exec`,
  SourceBucketArn: 'arn:aws:s3:::bucket',
  DagS3Path: 'dags',
  NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
  MaxWorkers: 4,
  Tags: { team: 'data' },
}

type Call = { method: keyof EnvironmentServicePort; args: unknown[] }

/** Records every call; answers with canned values, or throws `failure` when set. */
class RecordingService implements EnvironmentServicePort {
  calls: Call[] = []
  failure: Error | undefined = undefined

  private record(method: keyof EnvironmentServicePort, args: unknown[]): void {
    this.calls.push({ method, args })
    if (this.failure !== undefined) throw this.failure
  }

  create(request: CreateEnvironmentRequest): Promise<string> {
    this.record('create', [request])
    return Promise.resolve(environmentArn(REGION, ACCOUNT, request.name))
  }

  get(name: string): Promise<EnvironmentView> {
    this.record('get', [name])
    return Promise.resolve(sampleView(name))
  }

  list(maxResults: number, nextToken?: string): Promise<{ names: string[]; nextToken?: string }> {
    this.record('list', [maxResults, nextToken])
    return Promise.resolve({ names: ['A', 'B'], nextToken: 'next-page' })
  }

  update(request: UpdateEnvironmentRequest): Promise<string> {
    this.record('update', [request])
    return Promise.resolve(environmentArn(REGION, ACCOUNT, request.name))
  }

  delete(name: string): Promise<void> {
    this.record('delete', [name])
    return Promise.resolve()
  }

  tagResource(arn: string, tags: Record<string, string>): Promise<void> {
    this.record('tagResource', [arn, tags])
    return Promise.resolve()
  }

  untagResource(arn: string, tagKeys: string[]): Promise<void> {
    this.record('untagResource', [arn, tagKeys])
    return Promise.resolve()
  }

  listTags(arn: string): Promise<Record<string, string>> {
    this.record('listTags', [arn])
    return Promise.resolve({ team: 'data', 'cost-center': '7' })
  }

  invokeRestApi(request: InvokeRestApiRequest, role?: string): Promise<InvokeRestApiResult> {
    this.record('invokeRestApi', role === 'Admin' ? [request] : [request, role])
    return Promise.resolve({ restApiStatusCode: 200, restApiResponse: { total_entries: 0 } })
  }

  createWebLoginToken(name: string, role: string, principal: string) {
    this.record('createWebLoginToken', [name, role, principal])
    return Promise.resolve({
      WebToken: 'token',
      WebServerHostname: 'localhost:8790',
      IamIdentity: 'user/admin',
      AirflowIdentity: 'user/admin',
    })
  }

  createCliToken(name: string, principal: string) {
    this.record('createCliToken', [name, principal])
    return Promise.resolve({ CliToken: 'token', WebServerHostname: 'localhost:8790' })
  }
}

/**
 * The real identity service's authorization (IAM policy evaluation) with authentication
 * replaced by a fixed caller: these tests are about the API's shapes; SigV4 is tested against
 * real clients in the integration tests.
 */
function identityWith(policy: unknown): AccessIdentity {
  const identity = new IdentityService({
    store: undefined as never,
    sealer: undefined as never,
    region: REGION,
    accountId: ACCOUNT,
    credentialsFile: '',
    logger: createLogger('silent'),
  })
  const principal: Principal = {
    userName: 'tester',
    arn: `arn:aws:iam::${ACCOUNT}:user/tester`,
    accessKeyId: 'AKIATESTTESTTESTTEST',
    policies: [parsePolicyDocument(policy)],
  }
  identity.authenticate = () => Promise.resolve(principal)
  return identity
}

function sampleView(name: string): EnvironmentView {
  const spec = sampleSpec()
  const createdAt = new Date('2026-03-01T00:00:00Z')
  return {
    record: {
      name,
      arn: environmentArn(REGION, ACCOUNT, name),
      id: 'abc123',
      createdAt,
      spec,
      generation: 1,
      tags: {},
      lastUpdateRequest: { createdAt, source: 'CreateEnvironment' },
      portBlock: 0,
      observation: {
        phase: 'provisioned',
        observedGeneration: 1,
        healthy: true,
        crashLooping: false,
        progressing: false,
        components: [],
      },
    },
    status: 'AVAILABLE',
    lastUpdate: { status: 'SUCCESS', createdAt, source: 'CreateEnvironment' },
    webserverUrl: 'localhost:8790',
  }
}

interface LogLine {
  level: 'info' | 'error'
  obj: Record<string, unknown>
  msg: string
}

let service: RecordingService
let logs: LogLine[]
let app: Hono

function build(maxBodyBytes?: number): Hono {
  return createApiApp({
    service,
    region: REGION,
    accountId: ACCOUNT,
    logger: {
      info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
      error: (obj, msg) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
    },
    ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
    access: {
      identity: identityWith(callerPolicy),
      store: { appendAudit: (event) => Promise.resolve(void audits.push(event)) },
    },
  })
}

/** The test caller's IAM policy (administrator unless a test says otherwise). */
let callerPolicy: unknown
let audits: AuditEvent[]

beforeEach(() => {
  service = new RecordingService()
  callerPolicy = ADMINISTRATOR_POLICY
  audits = []
  logs = []
  app = build()
})

async function send(
  method: string,
  path: string,
  body?: unknown,
  host = 'http://localhost',
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const init: RequestInit = { method }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    init.headers = { 'content-type': 'application/json' }
  }
  const res = await app.request(`${host}${path}`, init)
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as Record<string, unknown>,
  }
}

function expectMwaaHeaders(headers: Headers): void {
  expect(headers.get('content-type')).toBe('application/json')
  expect(headers.get('x-amzn-RequestId')).toMatch(UUID)
}

async function expectError(
  response: Promise<{ status: number; headers: Headers; json: Record<string, unknown> }>,
  status: number,
  errorType: string,
): Promise<string> {
  const res = await response
  expect(res.status).toBe(status)
  expect(res.headers.get('x-amzn-ErrorType')).toBe(errorType)
  expectMwaaHeaders(res.headers)
  const message = res.json.message ?? res.json.Message
  expect(typeof message).toBe('string')
  return message as string
}

describe('environment operations', () => {
  it('CreateEnvironment validates, fills defaults and returns {Arn}', async () => {
    const res = await send('PUT', '/environments/MyEnv', CREATE_BODY)
    expect(res.status).toBe(200)
    expectMwaaHeaders(res.headers)
    expect(res.json).toEqual({ Arn: ARN })
    expect(service.calls).toHaveLength(1)
    const [request] = service.calls[0]?.args as [CreateEnvironmentRequest]
    expect(request.name).toBe('MyEnv')
    expect(request.tags).toEqual({ team: 'data' })
    expect(request.spec).toMatchObject({
      maxWorkers: 4,
      minWorkers: 1,
      environmentClass: 'mw1.small',
    })
  })

  it('routes by method and path whatever the Host (api. / env. prefixes)', async () => {
    for (const host of [
      'http://api.localhost:8780',
      'http://env.localhost:8780',
      'http://api.airflow.us-east-1.amazonaws.com',
    ]) {
      const res = await send('GET', '/environments/MyEnv', undefined, host)
      expect(res.status).toBe(200)
    }
    const res = await send(
      'POST',
      '/restapi/MyEnv',
      { Path: '/dags', Method: 'GET' },
      'http://env.localhost',
    )
    expect(res.status).toBe(200)
    expect(service.calls.map((c) => c.method)).toEqual(['get', 'get', 'get', 'invokeRestApi'])
  })

  it('GetEnvironment returns {Environment} in the wire shape', async () => {
    const res = await send('GET', '/environments/MyEnv')
    expect(res.status).toBe(200)
    expect(res.json.Environment).toMatchObject({
      Name: 'MyEnv',
      Arn: ARN,
      Status: 'AVAILABLE',
      WebserverUrl: 'localhost:8790',
      CreatedAt: 1772323200,
      LastUpdate: { Status: 'SUCCESS', Source: 'CreateEnvironment' },
    })
    expect(service.calls).toEqual([{ method: 'get', args: ['MyEnv'] }])
  })

  it('ListEnvironments passes MaxResults and NextToken and pages', async () => {
    const res = await send('GET', '/environments?MaxResults=5&NextToken=abc%3D%3D')
    expect(res.status).toBe(200)
    expect(res.json).toEqual({ Environments: ['A', 'B'], NextToken: 'next-page' })
    expect(service.calls).toEqual([{ method: 'list', args: [5, 'abc=='] }])
    await send('GET', '/environments')
    expect(service.calls[1]).toEqual({ method: 'list', args: [25, undefined] })
  })

  it.each(['0', '26', 'ten'])('ListEnvironments rejects MaxResults=%s', async (value) => {
    const message = await expectError(
      send('GET', `/environments?MaxResults=${value}`),
      400,
      'ValidationException',
    )
    expect(message).toContain(`Value '${value}' at 'maxResults' failed to satisfy constraint`)
    expect(service.calls).toEqual([])
  })

  it('UpdateEnvironment passes only the members sent', async () => {
    const res = await send('PATCH', '/environments/MyEnv', {
      MaxWorkers: 7,
      WorkerReplacementStrategy: 'FORCED',
      KmsKey: 'alias/ignored',
    })
    expect(res.status).toBe(200)
    expect(res.json).toEqual({ Arn: ARN })
    expect(service.calls).toEqual([
      {
        method: 'update',
        args: [{ name: 'MyEnv', changes: { maxWorkers: 7 }, workerReplacementStrategy: 'FORCED' }],
      },
    ])
  })

  it('UpdateEnvironment takes an empty body', async () => {
    const res = await app.request('/environments/MyEnv', { method: 'PATCH' })
    expect(res.status).toBe(200)
    expect(service.calls).toEqual([{ method: 'update', args: [{ name: 'MyEnv', changes: {} }] }])
  })

  it('DeleteEnvironment returns {}', async () => {
    const res = await send('DELETE', '/environments/MyEnv')
    expect(res.status).toBe(200)
    expectMwaaHeaders(res.headers)
    expect(res.json).toEqual({})
    expect(service.calls).toEqual([{ method: 'delete', args: ['MyEnv'] }])
  })

  it('rejects an invalid name before calling the service', async () => {
    const message = await expectError(
      send('GET', '/environments/bad%20name'),
      400,
      'ValidationException',
    )
    expect(message).toContain("Value 'bad name' at 'name'")
    expect(service.calls).toEqual([])
  })

  it('reports every field problem of a create in one 400', async () => {
    const message = await expectError(
      send('PUT', '/environments/MyEnv', { ...CREATE_BODY, Schedulers: 6, MaxWorkers: 'x' }),
      400,
      'ValidationException',
    )
    expect(message).toMatch(/^2 validation errors detected: /)
    expect(message).toContain("at 'maxWorkers'")
    expect(message).toContain("at 'schedulers'")
    expect(service.calls).toEqual([])
  })
})

describe('tag operations', () => {
  it('TagResource decodes the ARN label exactly once', async () => {
    expect(ENCODED_ARN).toContain('%3A')
    const res = await send('POST', `/tags/${ENCODED_ARN}`, { Tags: { team: 'ml', 'a+b': 'c d' } })
    expect(res.status).toBe(200)
    expect(res.json).toEqual({})
    expect(service.calls).toEqual([
      { method: 'tagResource', args: [ARN, { team: 'ml', 'a+b': 'c d' }] },
    ])
  })

  it('TagResource requires Tags', async () => {
    const message = await expectError(
      send('POST', `/tags/${ENCODED_ARN}`, {}),
      400,
      'ValidationException',
    )
    expect(message).toContain(
      "Value null at 'tags' failed to satisfy constraint: Member must not be null",
    )
  })

  it('UntagResource reads repeated tagKeys', async () => {
    const res = await send(
      'DELETE',
      `/tags/${ENCODED_ARN}?tagKeys=team&tagKeys=a%2Bb&tagKeys=c%20d`,
    )
    expect(res.status).toBe(200)
    expect(res.json).toEqual({})
    expect(service.calls).toEqual([
      { method: 'untagResource', args: [ARN, ['team', 'a+b', 'c d']] },
    ])
  })

  it('ListTagsForResource returns {Tags}', async () => {
    const res = await send('GET', `/tags/${ENCODED_ARN}`)
    expect(res.json).toEqual({ Tags: { team: 'data', 'cost-center': '7' } })
    expect(service.calls).toEqual([{ method: 'listTags', args: [ARN] }])
  })

  it('accepts an ARN label that was not encoded, except for its slash', async () => {
    const res = await send('GET', `/tags/${ARN.replace('/', '%2F')}`)
    expect(res.status).toBe(200)
    expect(service.calls).toEqual([{ method: 'listTags', args: [ARN] }])
  })

  it('does not decode twice', async () => {
    const twice = encodeURIComponent(ENCODED_ARN)
    const message = await expectError(send('GET', `/tags/${twice}`), 400, 'ValidationException')
    expect(message).toContain(`Value '${ENCODED_ARN}' at 'resourceArn'`)
    expect(service.calls).toEqual([])
  })

  it('rejects malformed percent-encoding', async () => {
    const message = await expectError(send('GET', '/tags/arn%E0%A4%A'), 400, 'ValidationException')
    expect(message).toContain('not valid percent-encoding')
  })

  it('rejects an ARN of another service', async () => {
    const other = encodeURIComponent('arn:aws:s3:::bucket')
    const message = await expectError(send('GET', `/tags/${other}`), 400, 'ValidationException')
    expect(message).toContain("at 'resourceArn'")
  })
})

describe('InvokeRestApi', () => {
  it('passes the validated request and returns Airflow’s answer', async () => {
    const res = await send('POST', '/restapi/MyEnv', {
      Path: '/dags',
      Method: 'GET',
      QueryParameters: { limit: 1 },
    })
    expect(res.status).toBe(200)
    expect(res.json).toEqual({ RestApiStatusCode: 200, RestApiResponse: { total_entries: 0 } })
    expect(service.calls).toEqual([
      {
        method: 'invokeRestApi',
        args: [{ name: 'MyEnv', path: '/dags', method: 'GET', queryParameters: { limit: 1 } }],
      },
    ])
  })

  it('maps an Airflow 4xx to RestApiClientException with its status and body', async () => {
    service.failure = new RestApiError(404, { detail: 'no such DAG' })
    const res = await send('POST', '/restapi/MyEnv', { Path: '/dags/x', Method: 'GET' })
    expect(res.status).toBe(400)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('RestApiClientException')
    expect(res.json).toEqual({
      RestApiStatusCode: 404,
      RestApiResponse: { detail: 'no such DAG' },
      message: 'Airflow REST API answered HTTP 404',
    })
  })

  it('refuses paths that leave the Airflow API', async () => {
    const message = await expectError(
      send('POST', '/restapi/MyEnv', { Path: '/../../auth', Method: 'GET' }),
      400,
      'ValidationException',
    )
    expect(message).toContain("must not contain '.' or '..' segments")
    // Tabs vanish in URL parsing and would turn '.\t.' into '..'.
    const hidden = await send('POST', '/restapi/MyEnv', {
      Path: '/.\t./.\t./ui/config',
      Method: 'GET',
    })
    expect(hidden.status).toBe(400)
    expect(hidden.json.message).toContain('control characters')
    expect(service.calls).toEqual([])
  })
})

describe('errors', () => {
  it('maps ResourceNotFoundError to 404 {message}', async () => {
    service.failure = new ResourceNotFoundError('Environment', 'Ghost')
    const message = await expectError(
      send('GET', '/environments/Ghost'),
      404,
      'ResourceNotFoundException',
    )
    expect(message).toBe('Environment Ghost not found.')
  })

  it('maps AccessDeniedError to 403 {Message}', async () => {
    service.failure = new AccessDeniedError('not allowed')
    const res = await send('DELETE', '/environments/MyEnv')
    expect(res.status).toBe(403)
    expect(res.json).toEqual({ Message: 'not allowed' })
  })

  it('logs a rejected request at info with its request id', async () => {
    service.failure = new ValidationError(
      'Environments with CREATE_FAILED status cannot be updated.',
    )
    const res = await send('PATCH', '/environments/MyEnv', {})
    const requestId = res.headers.get('x-amzn-RequestId')
    expect(res.json).toEqual({
      message: 'Environments with CREATE_FAILED status cannot be updated.',
    })
    expect(logs).toContainEqual({
      level: 'info',
      msg: 'request rejected',
      obj: { requestId, errorType: 'ValidationException', status: 400 },
    })
  })

  it('answers an unexpected error with a generic 500 and logs it with the request id', async () => {
    const boom = new Error('connection string postgres://u:secret@db')
    service.failure = boom
    const res = await send('GET', '/environments/MyEnv')
    expect(res.status).toBe(500)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('InternalServerException')
    expect(res.json).toEqual({ message: INTERNAL_ERROR_MESSAGE })
    expect(JSON.stringify(res.json)).not.toContain('secret')
    const requestId = res.headers.get('x-amzn-RequestId')
    expect(logs).toContainEqual({
      level: 'error',
      msg: 'request failed',
      obj: { requestId, err: boom },
    })
  })

  it('rejects a body that is not JSON', async () => {
    const message = await expectError(
      send('PUT', '/environments/MyEnv', '{"ExecutionRoleArn":'),
      400,
      'ValidationException',
    )
    expect(message).toBe('The request body could not be parsed as JSON.')
    expect(service.calls).toEqual([])
  })

  it('rejects a JSON body that is not an object', async () => {
    const message = await expectError(
      send('POST', `/tags/${ENCODED_ARN}`, '[1]'),
      400,
      'ValidationException',
    )
    expect(message).toBe('The request body must be a JSON object.')
  })

  it('rejects a body over maxBodyBytes', async () => {
    app = build(64)
    const message = await expectError(
      send('PUT', '/environments/MyEnv', CREATE_BODY),
      400,
      'ValidationException',
    )
    expect(message).toBe('The request body is larger than 64 bytes.')
    expect(service.calls).toEqual([])
  })

  it('rejects a body over the limit when Content-Length says so', async () => {
    app = build(10)
    const res = await app.request('/environments/MyEnv', {
      method: 'PUT',
      body: 'x'.repeat(11),
      headers: { 'content-length': '11' },
    })
    expect(res.status).toBe(400)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('ValidationException')
  })

  it.each([
    ['POST', '/environments/MyEnv'],
    ['GET', '/nothing'],
    ['GET', '/environments/MyEnv/extra'],
    ['PUT', '/tags/x'],
    ['POST', '/clitoken'],
  ])('answers %s %s with 404 UnknownOperationException', async (method, path) => {
    const message = await expectError(send(method, path), 404, 'UnknownOperationException')
    expect(message).toBe(`No operation matches ${method} ${path}.`)
    expect(service.calls).toEqual([])
  })

  it('gives every response its own request id', async () => {
    const a = await send('GET', '/environments/MyEnv')
    const b = await send('GET', '/nothing')
    const idA = a.headers.get('x-amzn-RequestId')
    expect(idA).toMatch(UUID)
    expect(b.headers.get('x-amzn-RequestId')).toMatch(UUID)
    expect(b.headers.get('x-amzn-RequestId')).not.toBe(idA)
    expect(logs).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: 'request handled',
        obj: expect.objectContaining({ requestId: idA, method: 'GET', status: 200 }) as unknown,
      }),
    )
  })
})

describe('access control', () => {
  const readOnly = {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['airflow:Get*', 'airflow:List*'], Resource: '*' },
      {
        Effect: 'Allow',
        Action: 'airflow:CreateWebLoginToken',
        Resource: `arn:aws:airflow:${REGION}:${ACCOUNT}:role/MyEnv/Viewer`,
      },
    ],
  }

  it('refuses what the policy does not allow before the service is called, and audits it', async () => {
    callerPolicy = readOnly
    app = build()
    const res = await send('PUT', '/environments/MyEnv', CREATE_BODY)
    expect(res.status).toBe(403)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('AccessDeniedException')
    expect((res.json as { Message: string }).Message).toContain(
      `airflow:CreateEnvironment on resource: ${ARN}`,
    )
    expect(service.calls).toEqual([])
    expect((await send('GET', '/environments/MyEnv')).status).toBe(200)
    expect(audits).toEqual([
      expect.objectContaining({
        principal: `arn:aws:iam::${ACCOUNT}:user/tester`,
        action: 'airflow:CreateEnvironment',
        resource: ARN,
        result: 'Failure',
        errorCode: 'AccessDeniedException',
        requestId: expect.stringMatching(UUID),
      }),
    ])
  })

  it('issues a web login token for the highest role the policy allows, and none for InvokeRestApi', async () => {
    callerPolicy = readOnly
    app = build()
    expect((await send('POST', '/webtoken/MyEnv')).status).toBe(200)
    expect(service.calls).toEqual([
      {
        method: 'createWebLoginToken',
        args: ['MyEnv', 'Viewer', `arn:aws:iam::${ACCOUNT}:user/tester`],
      },
    ])
    expect((await send('POST', '/webtoken/OtherEnv')).status).toBe(403)
    expect((await send('POST', '/restapi/MyEnv', { Path: '/dags', Method: 'GET' })).status).toBe(
      403,
    )
    expect(audits.map((a) => [a.action, a.result])).toEqual([
      ['airflow:CreateWebLoginToken', 'Success'],
      ['airflow:CreateWebLoginToken', 'Failure'],
      ['airflow:InvokeRestApi', 'Failure'],
    ])
  })

  it('authorizes HEAD like GET and answers unknown or undecodable paths without a handler', async () => {
    callerPolicy = {
      Statement: [{ Effect: 'Allow', Action: 'airflow:ListEnvironments', Resource: '*' }],
    }
    app = build()
    expect(
      (await app.request('http://localhost/environments/MyEnv', { method: 'HEAD' })).status,
    ).toBe(403)
    expect(
      (await app.request('http://localhost/airdock/v1/audit', { method: 'HEAD' })).status,
    ).toBe(403)
    expect((await send('GET', '/environments')).status).toBe(200)
    const undecodable = await app.request(
      'http://localhost/airdock/v1/%69am/users/bob/policies/p%ZZ',
      {
        method: 'PUT',
        body: '{}',
      },
    )
    expect(undecodable.status).toBe(400)
    expect((await send('GET', '/no/such/route')).status).toBe(404)
    expect(service.calls.map((c) => c.method)).toEqual(['list'])
  })

  it('lets an explicit Deny win over an Allow', async () => {
    callerPolicy = {
      Statement: [
        { Effect: 'Allow', Action: 'airflow:*', Resource: '*' },
        { Effect: 'Deny', Action: 'airflow:DeleteEnvironment', Resource: ARN },
      ],
    }
    app = build()
    expect((await send('DELETE', '/environments/MyEnv')).status).toBe(403)
    expect((await send('DELETE', '/environments/Other')).status).toBe(200)
  })
})

describe('hostile input', () => {
  it('refuses header injection through tags and names, reflecting nothing into headers', async () => {
    const injected = 'x\r\nSet-Cookie: stolen=1'
    const tagged = await send('POST', `/tags/${ENCODED_ARN}`, { Tags: { team: injected } })
    expect(tagged.status).toBe(400)
    expect(tagged.headers.get('set-cookie')).toBeNull()
    const named = await send('GET', `/environments/${encodeURIComponent(injected)}`)
    expect(named.status).toBe(400)
    expect(named.headers.get('set-cookie')).toBeNull()
    expect([...named.headers.keys()].sort()).toEqual([
      'content-type',
      'x-amzn-errortype',
      'x-amzn-requestid',
    ])
    expect(service.calls).toEqual([])
  })

  it('refuses path traversal in names and ARNs before the service sees it', async () => {
    for (const path of [
      '/environments/..%2F..%2Fetc',
      `/tags/${encodeURIComponent('arn:aws:airflow:us-east-1:123456789012:environment/../x')}`,
    ]) {
      expect((await send('GET', path)).status).toBe(400)
    }
    expect(service.calls).toEqual([])
  })
})
