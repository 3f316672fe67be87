/**
 * Requests signed for services airdock does not serve, on the API app with access control on:
 * the answer names the service (and what is planned) in the shape of the client's protocol,
 * and requests signed for `airflow` still go through authentication. Real clients (the AWS
 * CLI) are in test/integration/api-behaviour.test.ts; here the CBOR body is read with the AWS
 * SDK for JavaScript's own decoder.
 */
import { cbor } from '@smithy/core/cbor'
import { describe, expect, it } from 'vitest'
import { AuthenticationError } from '../iam/identity-service.js'
import { SigV4Error } from '../iam/sigv4.js'
import type { EnvironmentServicePort } from '../services/environment-service-port.js'
import { createApiApp } from './app.js'
import {
  cborTextMap,
  credentialScopeService,
  serviceNotServedMessage,
  SERVICE_NOT_SERVED,
} from './unserved-services.js'

const audits: unknown[] = []
const app = createApiApp({
  service: {} as EnvironmentServicePort,
  region: 'us-east-1',
  accountId: '123456789012',
  logger: { info: () => undefined, error: () => undefined },
  access: {
    identity: {
      authenticate: () =>
        Promise.reject(
          new AuthenticationError(
            new SigV4Error(
              'InvalidSignatureException',
              "Credential should be scoped to correct service: 'airflow'. ",
            ),
          ),
        ),
      authorize: () => undefined,
      highestRole: () => 'Viewer',
    },
    store: { appendAudit: (event) => Promise.resolve(void audits.push(event)) },
  },
})

/** An `Authorization` header as SDKs write it, scoped to `service`. */
function authorization(service: string): string {
  return (
    `AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEEXAMPLE12/20261121/us-east-1/${service}/aws4_request, ` +
    `SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`
  )
}

const signed = (service: string, headers: Record<string, string> = {}) => ({
  authorization: authorization(service),
  'x-amz-date': '20261121T120000Z',
  ...headers,
})

describe('the credential scope', () => {
  it('is read from the Authorization header or a presigned URL', () => {
    const none = new URLSearchParams()
    expect(credentialScopeService(authorization('logs'), none)).toBe('logs')
    expect(
      credentialScopeService(
        undefined,
        new URLSearchParams({ 'X-Amz-Credential': 'AKID/20261121/us-east-1/s3/aws4_request' }),
      ),
    ).toBe('s3')
    expect(credentialScopeService(undefined, none)).toBeUndefined()
    expect(credentialScopeService('AWS4-HMAC-SHA256 Credential=AKID/x', none)).toBeUndefined()
  })
})

describe('requests signed for services airdock does not serve', () => {
  it('CloudWatch Logs (JSON 1.1): the service named, planned, in the JSON error shape', async () => {
    const res = await app.request('http://127.0.0.1:8780/', {
      method: 'POST',
      headers: signed('logs', {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'Logs_20140328.DescribeLogGroups',
      }),
      body: '{}',
    })
    expect(res.status).toBe(400)
    expect(res.headers.get('x-amzn-ErrorType')).toBe(SERVICE_NOT_SERVED)
    expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1')
    const body = (await res.json()) as { __type: string; message: string }
    expect(body.__type).toBe(SERVICE_NOT_SERVED)
    expect(body.message).toContain("'logs' (Amazon CloudWatch Logs), which airdock does not serve")
    expect(body.message).toMatch(/planned/)
    expect(body.message).not.toMatch(/Credential should be scoped/)
    expect(audits).toEqual([])
  })

  it('CloudWatch (Smithy RPC v2 CBOR): a CBOR error the AWS SDK decodes', async () => {
    const res = await app.request(
      'http://127.0.0.1:8780/service/GraniteServiceVersion20100801/operation/ListMetrics',
      {
        method: 'POST',
        headers: signed('monitoring', {
          'smithy-protocol': 'rpc-v2-cbor',
          'content-type': 'application/cbor',
          accept: 'application/cbor',
        }),
        body: new Uint8Array([0xa0]),
      },
    )
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toBe('application/cbor')
    expect(res.headers.get('smithy-protocol')).toBe('rpc-v2-cbor')
    const body = cbor.deserialize(new Uint8Array(await res.arrayBuffer())) as Record<string, string>
    expect(body.__type).toBe(SERVICE_NOT_SERVED)
    expect(body.message).toContain("'monitoring' (Amazon CloudWatch)")
    expect(body.message).toMatch(/planned/)
  })

  it('STS (query) and S3 (rest-xml): an XML ErrorResponse naming the service', async () => {
    const sts = await app.request('http://127.0.0.1:8780/', {
      method: 'POST',
      headers: signed('sts', { 'content-type': 'application/x-www-form-urlencoded' }),
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
    })
    const s3 = await app.request('http://127.0.0.1:8780/my-bucket?list-type=2', {
      headers: signed('s3'),
    })
    for (const [res, service] of [
      [sts, 'sts'],
      [s3, 's3'],
    ] as const) {
      expect(res.status).toBe(400)
      expect(res.headers.get('content-type')).toBe('text/xml')
      const xml = await res.text()
      expect(xml).toContain(`<Code>${SERVICE_NOT_SERVED}</Code>`)
      expect(xml).toContain(`signed for the AWS service '${service}'`)
      expect(xml).toMatch(/<RequestId>[0-9a-f-]{36}<\/RequestId>/)
    }
  })

  it('an unknown signing name is named too', () => {
    expect(serviceNotServedMessage('frobnicate')).toMatch(
      /^This request is signed for the AWS service 'frobnicate', which airdock does not serve\. This endpoint serves the Amazon MWAA API \(signing name 'airflow'\)\./,
    )
  })

  it('a request signed for airflow still goes through authentication', async () => {
    const res = await app.request('http://127.0.0.1:8780/environments', {
      headers: signed('airflow'),
    })
    expect(res.status).toBe(403)
    expect(res.headers.get('x-amzn-ErrorType')).toBe('InvalidSignatureException')
  })
})

describe('cborTextMap', () => {
  it('encodes definite-length maps of text (RFC 8949 appendix A examples)', () => {
    expect(Buffer.from(cborTextMap({ a: 'b' })).toString('hex')).toBe('a161616162')
    const long = 'x'.repeat(300)
    expect(cbor.deserialize(cborTextMap({ m: long, n: 'é'.repeat(20) }))).toEqual({
      m: long,
      n: 'é'.repeat(20),
    })
  })
})
