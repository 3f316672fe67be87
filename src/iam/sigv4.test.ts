import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  canonicalQueryString,
  canonicalUri,
  httpStatusForSigV4Error,
  SigV4Error,
  verifySigV4,
  type SignedRequest,
  type SigV4ErrorCode,
  type VerifySigV4Options,
} from './sigv4.js'

const REGION = 'us-east-1'
const SERVICE = 'airflow'
const AKID = 'AKIDAIRDOCKTEST'
const SECRET = 'airdock-test-secret'
const SIGNED_AT = new Date('2026-11-21T12:00:00Z')
const ENV_ARN = 'arn:aws:airflow:us-east-1:000000000000:environment/my-env'
// How an SDK sends the ResourceArn label of /tags/{ResourceArn}: `:` and `/` percent-encoded.
const TAGS_PATH = `/tags/${encodeURIComponent(ENV_ARN)}`

const KEYS = new Map([
  [AKID, SECRET],
  ['AKIDBOTO', 'boto-secret'],
])

const options = (overrides: Partial<VerifySigV4Options> = {}): VerifySigV4Options => ({
  region: REGION,
  service: SERVICE,
  now: SIGNED_AT,
  lookupSecret: (id) => Promise.resolve(KEYS.get(id)),
  ...overrides,
})

/** RFC 3986 encoding, as the SDKs build a query string. */
const encode = (s: string): string =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)

interface SignSpec {
  method?: string
  path?: string
  query?: Record<string, string | string[]>
  headers?: Record<string, string>
  body?: string
  region?: string
  service?: string
  accessKeyId?: string
  sessionToken?: string
  applyChecksum?: boolean
  signingDate?: Date
}

/** Signs with @smithy/signature-v4 (what the AWS SDK for JavaScript uses) and returns the wire form. */
async function smithySigned(spec: SignSpec = {}): Promise<SignedRequest> {
  const method = spec.method ?? 'PUT'
  const rawPath = spec.path ?? TAGS_PATH
  const body = spec.body ?? JSON.stringify({ Tags: { team: 'data', 'cost center': 'A/B+C' } })
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: spec.accessKeyId ?? AKID,
      secretAccessKey: SECRET,
      ...(spec.sessionToken !== undefined && { sessionToken: spec.sessionToken }),
    },
    region: spec.region ?? REGION,
    service: spec.service ?? SERVICE,
    sha256: Sha256,
    ...(spec.applyChecksum !== undefined && { applyChecksum: spec.applyChecksum }),
  })
  const signed = await signer.sign(
    {
      method,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 8780,
      path: rawPath,
      query: spec.query ?? {},
      headers: { host: '127.0.0.1:8780', 'content-type': 'application/json', ...spec.headers },
      body,
    },
    { signingDate: spec.signingDate ?? SIGNED_AT },
  )
  const headers = Object.fromEntries(
    Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]),
  )
  const rawQuery = Object.entries(spec.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${encode(k)}=${encode(x)}`))
    .join('&')
  return { method, rawPath, rawQuery, headers, body: Buffer.from(body, 'utf8') }
}

/** The SigV4Error a verification fails with. */
async function failure(request: SignedRequest, opts = options()): Promise<SigV4Error> {
  try {
    await verifySigV4(request, opts)
  } catch (err) {
    expect(err).toBeInstanceOf(SigV4Error)
    return err as SigV4Error
  }
  throw new Error('verifySigV4 accepted the request')
}

const withHeaders = (
  request: SignedRequest,
  changes: Record<string, string | string[] | undefined>,
): SignedRequest => {
  const headers = { ...request.headers, ...changes }
  for (const [k, v] of Object.entries(changes)) if (v === undefined) delete headers[k]
  return { ...request, headers }
}

const authorizationOf = (request: SignedRequest): string =>
  request.headers['authorization'] as string

const MISMATCH = 'The request signature we calculated does not match the signature you provided.'

describe('verifySigV4 with @smithy/signature-v4', () => {
  it('verifies a PUT to a path holding an encoded ARN, with a JSON body', async () => {
    const request = await smithySigned()
    expect(request.rawPath).toBe(
      '/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A000000000000%3Aenvironment%2Fmy-env',
    )
    expect(request.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/)
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  it('verifies repeated query keys, in either order on the wire', async () => {
    const request = await smithySigned({
      method: 'DELETE',
      body: '',
      query: { tagKeys: ['a', 'b'] },
    })
    expect(request.rawQuery).toBe('tagKeys=a&tagKeys=b')
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
    await expect(
      verifySigV4({ ...request, rawQuery: 'tagKeys=b&tagKeys=a' }, options()),
    ).resolves.toEqual({ accessKeyId: AKID })
  })

  it('verifies query keys and values that need encoding (space, /, +, =, non-ASCII, empty)', async () => {
    const request = await smithySigned({
      method: 'GET',
      body: '',
      query: { 'next token': 'a/b+c=d', Zeta: '', uni: 'é€☃', '~ok-._': '*()!' },
    })
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
    // `+` is a space, as the application's query parser reads it.
    const plus = { ...request, rawQuery: request.rawQuery.replace('next%20token', 'next+token') }
    await expect(verifySigV4(plus, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  it('verifies paths with empty and dot segments as the SDK normalises them', async () => {
    const request = await smithySigned({ method: 'GET', body: '', path: '/a//b/./c/../d/' })
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  it('verifies header values with extra whitespace and a header sent twice', async () => {
    const request = await smithySigned({
      headers: { 'x-airdock-note': '  two   spaces\tand a tab  ', 'x-airdock-multi': 'a,b' },
    })
    expect(authorizationOf(request)).toContain('x-airdock-multi;x-airdock-note')
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
    const twice = withHeaders(request, { 'x-airdock-multi': ['a', ' b '] })
    await expect(verifySigV4(twice, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  it('ignores headers that are not signed', async () => {
    const request = withHeaders(await smithySigned(), { 'user-agent': 'changed', 'x-other': '1' })
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  it('verifies a body-less request without x-amz-content-sha256 (payload hash of the body)', async () => {
    const request = await smithySigned({ method: 'GET', body: '', applyChecksum: false })
    expect(request.headers['x-amz-content-sha256']).toBeUndefined()
    await expect(verifySigV4(request, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  it('accepts UNSIGNED-PAYLOAD (the body is then not covered)', async () => {
    const request = await smithySigned({ headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } })
    const tampered = { ...request, body: Buffer.from('{"other":1}') }
    await expect(verifySigV4(tampered, options())).resolves.toEqual({ accessKeyId: AKID })
  })

  describe('rejects a tampered request with InvalidSignatureException', () => {
    const cases: [string, (r: SignedRequest) => SignedRequest, string][] = [
      ['method', (r) => ({ ...r, method: 'POST' }), MISMATCH],
      ['path', (r) => ({ ...r, rawPath: r.rawPath.replace('my-env', 'my-env2') }), MISMATCH],
      ['path encoding', (r) => ({ ...r, rawPath: r.rawPath.replace(/%3A/g, ':') }), MISMATCH],
      ['query value', (r) => ({ ...r, rawQuery: 'tagKeys=a&tagKeys=c' }), MISMATCH],
      ['query added', (r) => ({ ...r, rawQuery: `${r.rawQuery}&extra=1` }), MISMATCH],
      ['query removed', (r) => ({ ...r, rawQuery: 'tagKeys=a' }), MISMATCH],
      ['signed header', (r) => withHeaders(r, { 'content-type': 'text/plain' }), MISMATCH],
      ['host', (r) => withHeaders(r, { host: '127.0.0.1:8781' }), MISMATCH],
      ['signed header removed', (r) => withHeaders(r, { 'content-type': undefined }), MISMATCH],
      [
        'x-amz-date (within the allowed skew)',
        (r) => withHeaders(r, { 'x-amz-date': '20261121T120001Z' }),
        MISMATCH,
      ],
      [
        'body',
        (r) => ({ ...r, body: Buffer.from('{"Tags":{"team":"ops"}}') }),
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      ],
      [
        'x-amz-content-sha256 removed',
        (r) => withHeaders(r, { 'x-amz-content-sha256': undefined }),
        MISMATCH,
      ],
      [
        'signature',
        (r) =>
          withHeaders(r, {
            authorization: authorizationOf(r).replace(/.$/, (c) => (c === '0' ? '1' : '0')),
          }),
        MISMATCH,
      ],
      [
        'signature in upper case',
        (r) =>
          withHeaders(r, {
            authorization: authorizationOf(r).replace(
              /Signature=(\w+)/,
              (_m, s: string) => `Signature=${s.toUpperCase()}`,
            ),
          }),
        MISMATCH,
      ],
      [
        'signature truncated',
        (r) => withHeaders(r, { authorization: authorizationOf(r).slice(0, -1) }),
        MISMATCH,
      ],
      [
        'signed header list',
        (r) =>
          withHeaders(r, {
            authorization: authorizationOf(r).replace('content-type;', ''),
          }),
        MISMATCH,
      ],
    ]
    it.each(cases)('%s', async (_what, tamper, message) => {
      const request = await smithySigned({ query: { tagKeys: ['a', 'b'] } })
      await expect(verifySigV4(request, options())).resolves.toBeDefined()
      const error = await failure(tamper(request))
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toContain(message)
    })

    it('a body when no x-amz-content-sha256 header was sent', async () => {
      const request = await smithySigned({ applyChecksum: false })
      const error = await failure({ ...request, body: Buffer.from('{}') })
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toContain(MISMATCH)
    })

    it('a wrong secret, and says which canonical request it expected (as AWS does)', async () => {
      const request = await smithySigned({ method: 'DELETE', body: '', query: { tagKeys: 'a' } })
      const error = await failure(
        request,
        options({ lookupSecret: () => Promise.resolve('not-the-secret') }),
      )
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toContain(
        "The Canonical String for this request should have been\n'DELETE\n" +
          '/tags/arn%253Aaws%253Aairflow%253Aus-east-1%253A000000000000%253Aenvironment%252Fmy-env\n' +
          'tagKeys=a\n',
      )
      expect(error.message).toContain(
        "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20261121T120000Z\n20261121/us-east-1/airflow/aws4_request\n",
      )
    })
  })

  it('rejects an unknown access key with UnrecognizedClientException', async () => {
    const error = await failure(await smithySigned({ accessKeyId: 'AKIDNOBODY' }))
    expect(error.code).toBe('UnrecognizedClientException')
    expect(error.message).toBe('The security token included in the request is invalid.')
  })

  it('rejects a session token (airdock issues none) with UnrecognizedClientException', async () => {
    const request = await smithySigned({ sessionToken: 'FwoGZXIvYXdzEXAMPLE' })
    expect(request.headers['x-amz-security-token']).toBe('FwoGZXIvYXdzEXAMPLE')
    const error = await failure(request)
    expect(error.code).toBe('UnrecognizedClientException')
    expect(error.message).toBe('The security token included in the request is invalid.')
  })

  describe('clock skew', () => {
    const minutes = (n: number) => new Date(SIGNED_AT.getTime() + n * 60_000)

    it('accepts a request signed up to 15 minutes before or after now', async () => {
      const request = await smithySigned()
      for (const now of [minutes(15), minutes(-15), minutes(0)]) {
        await expect(verifySigV4(request, options({ now }))).resolves.toEqual({ accessKeyId: AKID })
      }
    })

    it('rejects a request signed 16 minutes ago: "Signature expired"', async () => {
      const error = await failure(await smithySigned(), options({ now: minutes(16) }))
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toBe(
        'Signature expired: 20261121T120000Z is now earlier than 20261121T120100Z (20261121T121600Z - 15 min.)',
      )
    })

    it('rejects a request signed 16 minutes in the future: "Signature not yet current"', async () => {
      const error = await failure(await smithySigned(), options({ now: minutes(-16) }))
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toBe(
        'Signature not yet current: 20261121T120000Z is still later than 20261121T115900Z (20261121T114400Z + 15 min.)',
      )
    })

    it('honours maxClockSkewMs', async () => {
      const request = await smithySigned()
      const error = await failure(request, options({ now: minutes(2), maxClockSkewMs: 60_000 }))
      expect(error.message).toBe(
        'Signature expired: 20261121T120000Z is now earlier than 20261121T120100Z (20261121T120200Z - 1 min.)',
      )
      await expect(
        verifySigV4(request, options({ now: minutes(2), maxClockSkewMs: 180_000 })),
      ).resolves.toBeDefined()
    })

    it('checks the time before looking the key up', async () => {
      let looked = false
      const lookupSecret = () => {
        looked = true
        return Promise.resolve(SECRET)
      }
      await failure(await smithySigned(), options({ now: minutes(60), lookupSecret }))
      expect(looked).toBe(false)
    })
  })

  describe('malformed authentication', () => {
    const cases: [string, (r: SignedRequest) => SignedRequest, SigV4ErrorCode, string][] = [
      [
        'no Authorization header',
        (r) => withHeaders(r, { authorization: undefined }),
        'MissingAuthenticationToken',
        'Missing Authentication Token',
      ],
      [
        'an empty Authorization header',
        (r) => withHeaders(r, { authorization: ' ' }),
        'MissingAuthenticationToken',
        'Missing Authentication Token',
      ],
      [
        'two Authorization headers',
        (r) => withHeaders(r, { authorization: [authorizationOf(r), authorizationOf(r)] }),
        'IncompleteSignature',
        'Only one Authorization header is allowed.',
      ],
      [
        'another scheme',
        (r) => withHeaders(r, { authorization: 'Bearer abc.def' }),
        'IncompleteSignature',
        "Unsupported Authorization scheme 'Bearer': only AWS4-HMAC-SHA256",
      ],
      [
        'SigV4a',
        (r) =>
          withHeaders(r, {
            authorization: authorizationOf(r).replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256'),
          }),
        'IncompleteSignature',
        "Unsupported Authorization scheme 'AWS4-ECDSA-P256-SHA256'",
      ],
      [
        'the algorithm alone',
        (r) => withHeaders(r, { authorization: 'AWS4-HMAC-SHA256' }),
        'IncompleteSignature',
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
      ],
      [
        'no Credential',
        (r) =>
          withHeaders(r, { authorization: authorizationOf(r).replace(/Credential=[^,]*,/, '') }),
        'IncompleteSignature',
        "Authorization header requires 'Credential' parameter.",
      ],
      [
        'no X-Amz-Date',
        (r) => withHeaders(r, { 'x-amz-date': undefined }),
        'IncompleteSignature',
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      ],
      [
        'a credential with 4 elements',
        (r) =>
          withHeaders(r, {
            authorization: authorizationOf(r).replace('/us-east-1/airflow', '/airflow'),
          }),
        'IncompleteSignature',
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDAIRDOCKTEST/20261121/airflow/aws4_request'",
      ],
      [
        'an extended-format X-Amz-Date',
        (r) => withHeaders(r, { 'x-amz-date': '2026-11-21T12:00:00Z' }),
        'IncompleteSignature',
        "Date must be in ISO-8601 'basic format'. Got '2026-11-21T12:00:00Z'.",
      ],
      [
        'an impossible X-Amz-Date',
        (r) => withHeaders(r, { 'x-amz-date': '20261321T120000Z' }),
        'IncompleteSignature',
        "Date must be in ISO-8601 'basic format'. Got '20261321T120000Z'.",
      ],
      [
        'a credential date other than X-Amz-Date',
        (r) => withHeaders(r, { 'x-amz-date': '20261122T000000Z' }),
        'InvalidSignatureException',
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261121' != '20261122', from '20261122T000000Z'.",
      ],
      [
        'another terminator',
        (r) =>
          withHeaders(r, {
            authorization: authorizationOf(r).replace('aws4_request', 'aws5_request'),
          }),
        'InvalidSignatureException',
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'.",
      ],
      [
        'host not signed',
        (r) => withHeaders(r, { authorization: authorizationOf(r).replace(';host;', ';') }),
        'InvalidSignatureException',
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
      ],
      [
        'an undecodable query string',
        (r) => ({ ...r, rawQuery: 'tagKeys=%E0%A4%A' }),
        'IncompleteSignature',
        'The query string contains a syntax error',
      ],
    ]
    it.each(cases)('%s', async (_what, change, code, message) => {
      const error = await failure(change(await smithySigned()))
      expect(error.code).toBe(code)
      expect(error.message).toContain(message)
      expect(httpStatusForSigV4Error(error.code)).toBe(403)
    })

    it('a credential scoped to another region', async () => {
      const error = await failure(await smithySigned({ region: 'eu-west-1' }))
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toContain(
        "Credential should be scoped to a valid region, not 'eu-west-1'.",
      )
    })

    it('a credential scoped to another service', async () => {
      const error = await failure(await smithySigned({ service: 'execute-api' }))
      expect(error.code).toBe('InvalidSignatureException')
      expect(error.message).toContain("Credential should be scoped to correct service: 'airflow'.")
    })

    it('a signed header named like an Object.prototype member', async () => {
      const request = await smithySigned()
      const auth = authorizationOf(request).replace(';host;', ';constructor;host;')
      const error = await failure(withHeaders(request, { authorization: auth }))
      expect(error.code).toBe('InvalidSignatureException')
    })
  })

  it('answers every error code with HTTP 403', () => {
    const codes: SigV4ErrorCode[] = [
      'MissingAuthenticationToken',
      'IncompleteSignature',
      'InvalidSignatureException',
      'UnrecognizedClientException',
    ]
    for (const code of codes) expect(httpStatusForSigV4Error(code)).toBe(403)
  })
})

describe('canonicalUri', () => {
  it.each([
    ['', '/'],
    ['/', '/'],
    ['/environments', '/environments'],
    ['/environments/my-env', '/environments/my-env'],
    ['/tags/arn%3Aaws%3Aairflow%2Fx', '/tags/arn%253Aaws%253Aairflow%252Fx'],
    ['/a//b/./c/../d/', '/a/b/d/'],
    ['//a', '/a'],
    ['/../a', '/a'],
    ['/a b/é', '/a%20b/%C3%A9'],
    ['/x~y_z-1.2', '/x~y_z-1.2'],
    ["/it's(*)!", '/it%27s%28%2A%29%21'],
  ])('%j → %j', (raw, canonical) => {
    expect(canonicalUri(raw)).toBe(canonical)
  })
})

describe('canonicalQueryString', () => {
  it.each([
    ['', ''],
    ['b=2&a=1', 'a=1&b=2'],
    ['k=b&k=a&j=z', 'j=z&k=a&k=b'],
    ['flag', 'flag='],
    ['a=1&&b=', 'a=1&b='],
    ['x=a%2fb', 'x=a%2Fb'],
    ['x=a/b:c', 'x=a%2Fb%3Ac'],
    ['x=a+b', 'x=a%20b'],
    ['x=a%2Bb', 'x=a%2Bb'],
    ['x=%7e~', 'x=~~'],
    ['x=é', 'x=%C3%A9'],
    ['B=1&a=1&_=1', 'B=1&_=1&a=1'],
    ['a=1=2', 'a=1%3D2'],
  ])('%j → %j', (raw, canonical) => {
    expect(canonicalQueryString(raw)).toBe(canonical)
  })

  it('refuses invalid percent-encoding', () => {
    expect(() => canonicalQueryString('a=%zz')).toThrow(SigV4Error)
    expect(() => canonicalQueryString('a=%FF')).toThrow(/syntax error/)
  })
})

// botocore (the AWS CLI and boto3) signs in Python; the tools venv (`make setup`) has it.
const PYTHON = path.resolve(import.meta.dirname, '../../.tools/venv/bin/python')
const BOTOCORE_SCRIPT = String.raw`
import base64, json
import botocore.auth, botocore.session
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

ARN = 'arn:aws:airflow:us-east-1:000000000000:environment/my-env'
URL = 'http://127.0.0.1:8780/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A000000000000%3Aenvironment%2Fmy-env'
out = {}

def sign(name, method, url, body, headers):
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    auth = botocore.auth.SigV4Auth(Credentials('AKIDBOTO', 'boto-secret'), 'airflow', 'us-east-1')
    auth.add_auth(request)
    out[name] = {'method': method, 'url': url, 'headers': dict(request.headers.items()),
                 'body': base64.b64encode(body).decode(), 'canonical': auth.canonical_request(request)}

sign('put', 'PUT', URL, b'{"Tags": {"team": "data"}}', {'Content-Type': 'application/json'})
sign('delete', 'DELETE', URL + '?tagKeys=a&tagKeys=b', b'', {})

# The real MWAA client: capture what it would send (serialised and signed), then stop.
class Captured(Exception):
    pass

def capture(request, **kwargs):
    out['client' + kwargs['event_name'].split('.')[-1]] = {
        'method': request.method, 'url': request.url,
        'headers': {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
        'body': base64.b64encode(request.body or b'').decode()}
    raise Captured()

client = botocore.session.get_session().create_client(
    'mwaa', region_name='us-east-1', endpoint_url='http://127.0.0.1:8780',
    aws_access_key_id='AKIDBOTO', aws_secret_access_key='boto-secret',
    config=Config(inject_host_prefix=False, retries={'total_max_attempts': 1}))
client.meta.events.register('before-send', capture)
for call in (lambda: client.tag_resource(ResourceArn=ARN, Tags={'team': 'data', 'a b': 'c/d'}),
             lambda: client.untag_resource(ResourceArn=ARN, tagKeys=['b', 'a b', 'a'])):
    try:
        call()
    except Captured:
        pass
print(json.dumps(out))
`

interface BotocoreRequest {
  method: string
  url: string
  headers: Record<string, string>
  body: string
  canonical?: string
}

/** The wire form of a request botocore signed for http://127.0.0.1:8780. */
function fromBotocore(r: BotocoreRequest): SignedRequest {
  const target = r.url.slice('http://127.0.0.1:8780'.length)
  const q = target.indexOf('?')
  const headers = Object.fromEntries(
    Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]),
  )
  return {
    method: r.method,
    rawPath: q === -1 ? target : target.slice(0, q),
    rawQuery: q === -1 ? '' : target.slice(q + 1),
    // urllib3 sends the Host header; botocore signs the same value.
    headers: { ...headers, host: '127.0.0.1:8780' },
    body: Buffer.from(r.body, 'base64'),
  }
}

describe('verifySigV4 with botocore', () => {
  let signed: Record<string, BotocoreRequest>
  beforeAll(async () => {
    const { stdout } = await promisify(execFile)(PYTHON, ['-c', BOTOCORE_SCRIPT], {
      env: { AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' },
      timeout: 60_000,
    })
    signed = JSON.parse(stdout) as Record<string, BotocoreRequest>
  })
  const opts = () => options({ now: new Date() })

  it('verifies a PUT with an encoded ARN path and a JSON body (SigV4Auth)', async () => {
    const put = signed['put']!
    expect(put.headers['Authorization']).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDBOTO\/\d{8}\/us-east-1\/airflow\/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=[0-9a-f]{64}$/,
    )
    // botocore signs the path encoded a second time, as canonicalUri does.
    const request = fromBotocore(put)
    expect(put.canonical!.split('\n')[1]).toBe(
      '/tags/arn%253Aaws%253Aairflow%253Aus-east-1%253A000000000000%253Aenvironment%252Fmy-env',
    )
    expect(put.canonical!.split('\n')[1]).toBe(canonicalUri(request.rawPath))
    await expect(verifySigV4(request, opts())).resolves.toEqual({ accessKeyId: 'AKIDBOTO' })
    const error = await failure(
      { ...request, body: Buffer.from('{"Tags": {"team": "ops"}}') },
      opts(),
    )
    expect(error.code).toBe('InvalidSignatureException')
  })

  it('verifies a DELETE with repeated tagKeys (SigV4Auth)', async () => {
    const del = signed['delete']!
    const request = fromBotocore(del)
    expect(request.rawQuery).toBe('tagKeys=a&tagKeys=b')
    expect(del.canonical!.split('\n')[2]).toBe(canonicalQueryString(request.rawQuery))
    await expect(verifySigV4(request, opts())).resolves.toEqual({ accessKeyId: 'AKIDBOTO' })
    const error = await failure({ ...request, rawQuery: 'tagKeys=a' }, opts())
    expect(error.code).toBe('InvalidSignatureException')
  })

  it('verifies what the botocore MWAA client sends for TagResource and UntagResource', async () => {
    const tag = signed['clientTagResource']!
    const untag = signed['clientUntagResource']!
    expect(tag.method).toBe('POST')
    expect(tag.url).toBe(`http://127.0.0.1:8780${TAGS_PATH}`)
    expect(untag.url).toBe(`http://127.0.0.1:8780${TAGS_PATH}?tagKeys=b&tagKeys=a%20b&tagKeys=a`)
    await expect(verifySigV4(fromBotocore(tag), opts())).resolves.toEqual({
      accessKeyId: 'AKIDBOTO',
    })
    await expect(verifySigV4(fromBotocore(untag), opts())).resolves.toEqual({
      accessKeyId: 'AKIDBOTO',
    })
  })
})
