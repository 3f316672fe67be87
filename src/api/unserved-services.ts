/**
 * Requests signed for AWS services airdock does not serve (yet). A client pointed at the
 * endpoint with the wrong command (`aws logs …`, `aws cloudwatch …`, `aws s3 …`) signs for
 * another service than MWAA's `airflow`; instead of SigV4's "Credential should be scoped to
 * correct service", it is told which service it asked for, that airdock does not serve it, and
 * what is planned (DESIGN.md decision 11: CloudWatch Logs and CloudWatch metrics; decision 12:
 * IAM roles).
 *
 * The service is read from the SigV4 credential scope (`Credential=AKID/date/region/SERVICE/
 * aws4_request` in `Authorization`, or `X-Amz-Credential` in the query), before authentication:
 * the answer says nothing about the caller or this installation, so it needs none.
 *
 * The error is shaped for the protocol the client speaks, so that its SDK shows the code and
 * message (botocore `parsers.py`): CBOR `{__type, message}` for Smithy RPC v2 CBOR (CloudWatch in
 * current SDKs), JSON `{__type, message}` with `x-amzn-ErrorType` for the JSON protocols
 * (CloudWatch Logs, KMS), and `<ErrorResponse><Error>…` XML for the query and rest-xml protocols
 * (STS, IAM, S3).
 */
import type { MiddlewareHandler } from 'hono'

/** The error code of the answer (`x-amzn-ErrorType`, `__type`, `<Code>`). */
export const SERVICE_NOT_SERVED = 'ServiceNotServedException'

/** HTTP status of the answer: a client error, so SDKs do not retry it. */
export const SERVICE_NOT_SERVED_STATUS = 400

/** The SigV4 signing name airdock serves: the MWAA API's. */
export const SERVED_SIGNING_NAME = 'airflow'

/** What airdock says about one AWS service it does not serve. */
interface UnservedService {
  /** The service's name as AWS writes it. */
  title: string
  /** What is planned for it, or what to use instead. */
  note: string
}

/** Known signing names (AWS service endpoints' `signingName`) and what to tell their callers. */
const KNOWN_SERVICES: Readonly<Record<string, UnservedService>> = {
  logs: {
    title: 'Amazon CloudWatch Logs',
    note:
      'A CloudWatch Logs API at this endpoint is planned; until then environment logs are files ' +
      'under $AIRDOCK_DATA_DIR/environments/<id>/logs/.',
  },
  monitoring: {
    title: 'Amazon CloudWatch',
    note:
      'A CloudWatch metrics API at this endpoint (and Prometheus text at /metrics) is planned; ' +
      'until then `airdock status` shows workers, web servers and their load.',
  },
  iam: {
    title: 'AWS Identity and Access Management',
    note:
      'The IAM API is planned; until then users, policies and access keys are managed with ' +
      '`airdock iam …` (the /airdock/v1/iam/ extension).',
  },
  kms: {
    title: 'AWS Key Management Service',
    note: 'Customer keys for KmsKey are managed with `airdock kms …` (the /airdock/v1/kms/ extension).',
  },
  s3: {
    title: 'Amazon S3',
    note:
      'Buckets are folders under $AIRDOCK_DATA_DIR/buckets/, or an S3-compatible service ' +
      'named in AIRDOCK_S3_ENDPOINT.',
  },
  sts: { title: 'AWS Security Token Service', note: 'airdock issues no temporary credentials.' },
}

/**
 * The service named by a request's SigV4 credential scope.
 * @param authorization - the `Authorization` header (`AWS4-HMAC-SHA256 Credential=…`)
 * @param query - the request's query parameters (`X-Amz-Credential` of a presigned URL)
 * @returns the signing name, or undefined when the request carries no well-formed credential
 */
export function credentialScopeService(
  authorization: string | undefined,
  query: URLSearchParams,
): string | undefined {
  const credential =
    /(?:^|[\s,])Credential=([^,\s]+)/.exec(authorization ?? '')?.[1] ??
    query.get('X-Amz-Credential') ??
    undefined
  const parts = credential?.split('/')
  return parts?.length === 5 && parts[3] ? parts[3] : undefined
}

/**
 * The message for a request signed for `service`: names the service, says airdock does not
 * serve it, what it serves instead, and what is planned.
 */
export function serviceNotServedMessage(service: string): string {
  const known = Object.hasOwn(KNOWN_SERVICES, service) ? KNOWN_SERVICES[service] : undefined
  const named = known ? `'${service}' (${known.title})` : `'${service}'`
  return (
    `This request is signed for the AWS service ${named}, which airdock does not serve. ` +
    `This endpoint serves the Amazon MWAA API (signing name '${SERVED_SIGNING_NAME}'). ` +
    (known ? known.note : 'See README.md for what airdock serves.')
  )
}

/** The wire form of an error, chosen from the request's protocol. */
export interface ProtocolError {
  status: number
  headers: Record<string, string>
  body: string | Uint8Array
}

/**
 * Shapes error `code` / `message` for the protocol the request was sent with (see the module
 * comment): `smithy-protocol: rpc-v2-cbor` → CBOR; `X-Amz-Target` or a JSON content type →
 * JSON; anything else → XML.
 */
export function protocolError(
  request: { headers: Headers },
  status: number,
  code: string,
  message: string,
  requestId: string,
): ProtocolError {
  const { headers } = request
  const contentType = headers.get('content-type') ?? ''
  if (headers.get('smithy-protocol') === 'rpc-v2-cbor') {
    return {
      status,
      headers: { 'content-type': 'application/cbor', 'smithy-protocol': 'rpc-v2-cbor' },
      body: cborTextMap({ __type: code, message }),
    }
  }
  if (headers.has('x-amz-target') || /json/i.test(contentType)) {
    const amzJson = /^application\/x-amz-json-1\.[01]/i.exec(contentType)?.[0]
    return {
      status,
      headers: { 'content-type': amzJson ?? 'application/json', 'x-amzn-ErrorType': code },
      body: JSON.stringify({ __type: code, message }),
    }
  }
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<ErrorResponse><Error><Type>Sender</Type><Code>${escapeXml(code)}</Code>` +
    `<Message>${escapeXml(message)}</Message></Error>` +
    `<RequestId>${escapeXml(requestId)}</RequestId></ErrorResponse>`
  return { status, headers: { 'content-type': 'text/xml' }, body: xml }
}

/**
 * Answers every request signed for another service than `airflow` with
 * {@link SERVICE_NOT_SERVED} (HTTP {@link SERVICE_NOT_SERVED_STATUS}); other requests pass.
 * @param requestIdOf - the request id of a request (echoed in XML bodies)
 */
export function unservedServiceMiddleware(
  requestIdOf: (c: Parameters<MiddlewareHandler>[0]) => string,
): MiddlewareHandler {
  return async (c, next) => {
    const service = credentialScopeService(
      c.req.header('authorization'),
      new URL(c.req.url).searchParams,
    )
    if (service === undefined || service === SERVED_SIGNING_NAME) return next()
    const error = protocolError(
      c.req.raw,
      SERVICE_NOT_SERVED_STATUS,
      SERVICE_NOT_SERVED,
      serviceNotServedMessage(service),
      requestIdOf(c),
    )
    return new Response(error.body, { status: error.status, headers: error.headers })
  }
}

/** Escapes text for an XML element. */
function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** CBOR (RFC 8949) of a map of text strings to text strings, definite lengths. */
export function cborTextMap(entries: Record<string, string>): Uint8Array {
  const chunks: Buffer[] = []
  const head = (major: number, length: number): void => {
    if (length < 24) chunks.push(Buffer.from([(major << 5) | length]))
    else if (length < 0x100) chunks.push(Buffer.from([(major << 5) | 24, length]))
    else if (length < 0x10000) {
      chunks.push(Buffer.from([(major << 5) | 25, length >> 8, length & 0xff]))
    } else {
      const b = Buffer.alloc(5)
      b[0] = (major << 5) | 26
      b.writeUInt32BE(length, 1)
      chunks.push(b)
    }
  }
  const text = (value: string): void => {
    const bytes = Buffer.from(value, 'utf8')
    head(3, bytes.length)
    chunks.push(bytes)
  }
  const keys = Object.keys(entries)
  head(5, keys.length)
  for (const key of keys) {
    text(key)
    text(entries[key]!)
  }
  return new Uint8Array(Buffer.concat(chunks))
}
