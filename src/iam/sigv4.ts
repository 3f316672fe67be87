/**
 * Server-side verification of AWS Signature Version 4, header form, as MWAA's endpoint checks it:
 *
 *     Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261121/us-east-1/airflow/aws4_request,
 *       SignedHeaders=host;x-amz-date, Signature=<64 hex>
 *     X-Amz-Date: 20261121T120000Z
 *
 * Sources: AWS General Reference / IAM User Guide, "Create a signed AWS API request" and
 * "Elements of an AWS API request signature" (canonical request, string to sign, signing key,
 * 15-minute validity); the canonicalisation actually used by botocore (`botocore.auth.SigV4Auth`)
 * and `@smithy/signature-v4` for services other than S3 (double URI-encoding of the path,
 * removal of empty and dot path segments); error codes and messages as AWS front ends return them.
 *
 * Not supported: query-string (presigned URL) authentication, SigV4a, chunked
 * `STREAMING-*` payloads, the `Date` header in place of `X-Amz-Date`, and session tokens
 * (`X-Amz-Security-Token`; airdock issues none, so a request carrying one is refused).
 *
 * Only node:crypto is used.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

/**
 * The error codes a client sees for an authentication failure (`x-amzn-ErrorType` / `__type`):
 * - `MissingAuthenticationToken`: no `Authorization` header;
 * - `IncompleteSignature`: the header or its credential cannot be parsed, `X-Amz-Date` is
 *   missing or malformed, the query string is not valid percent-encoding;
 * - `InvalidSignatureException`: wrong credential scope (date, region, service, terminator),
 *   `host` not signed, request too old or too new, payload hash mismatch, signature mismatch;
 * - `UnrecognizedClientException`: unknown access key ID, or a session token.
 *
 * The first two are spelled as in the AWS "Common Errors" reference; rest-json front ends such as
 * API Gateway send them with an `Exception` suffix (`MissingAuthenticationTokenException`,
 * `IncompleteSignatureException`), which clients show as the code unchanged.
 */
export type SigV4ErrorCode =
  | 'MissingAuthenticationToken'
  | 'IncompleteSignature'
  | 'InvalidSignatureException'
  | 'UnrecognizedClientException'

/** An authentication failure; `code` and `message` are what the client should receive. */
export class SigV4Error extends Error {
  override readonly name = 'SigV4Error'
  constructor(
    readonly code: SigV4ErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/**
 * The HTTP status to answer a {@link SigV4Error} with: 403 Forbidden for every code, as AWS
 * rest-json front ends do (MissingAuthenticationToken included; the "Common Errors" reference
 * lists 400 for IncompleteSignature, but signature failures reach clients as 403).
 */
export function httpStatusForSigV4Error(code: SigV4ErrorCode): number {
  switch (code) {
    case 'MissingAuthenticationToken':
    case 'IncompleteSignature':
    case 'InvalidSignatureException':
    case 'UnrecognizedClientException':
      return 403
  }
}

/**
 * The parts of an HTTP request that a SigV4 signature covers, exactly as received.
 *
 * - `method`: the request method as sent (e.g. `PUT`).
 * - `rawPath`: the request target's path, still percent-encoded, without the query
 *   (e.g. `/tags/arn%3Aaws%3Aairflow%3Aus-east-1%3A000000000000%3Aenvironment%2Fmy-env`).
 * - `rawQuery`: what follows `?`, as received; `''` when there is none.
 * - `headers`: lower-case names; a header received several times as an array of its values
 *   (Node's `req.headersDistinct`); values as byte strings, one character per byte, as Node and
 *   the Fetch `Headers` class give them.
 * - `body`: the raw body bytes.
 */
export interface SignedRequest {
  method: string
  rawPath: string
  rawQuery: string
  headers: Record<string, string | string[] | undefined>
  body: Uint8Array
}

/** Settings for {@link verifySigV4}. */
export interface VerifySigV4Options {
  /** The region the credential scope must name (e.g. `us-east-1`). */
  region: string
  /** The signing name the credential scope must name (`airflow` for MWAA). */
  service: string
  /** The current time, against which `X-Amz-Date` is checked. */
  now: Date
  /** How far `X-Amz-Date` may be from `now`, either way, in milliseconds; default 15 minutes. */
  maxClockSkewMs?: number
  /** The secret access key of an access key ID; `undefined` when the key is unknown. */
  lookupSecret: (accessKeyId: string) => Promise<string | undefined>
}

/** What a verified request proves: the access key ID that signed it. */
export interface VerifiedSigV4 {
  accessKeyId: string
}

const ALGORITHM = 'AWS4-HMAC-SHA256'
const TERMINATOR = 'aws4_request'
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD'
const DEFAULT_SKEW_MS = 15 * 60 * 1000
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

const sha256Hex = (data: Uint8Array | string): string =>
  createHash('sha256').update(data).digest('hex')

const hmac = (key: Uint8Array | string, data: string): Buffer =>
  createHmac('sha256', key).update(data, 'utf8').digest()

/** One header's value; several values (a header sent more than once) are joined with `,`. */
function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = rawHeader(headers, name)
  return Array.isArray(value) ? value.join(',') : value
}

/** A header as given, own properties only (a signed header named `constructor` is just absent). */
function rawHeader(headers: SignedRequest['headers'], name: string): string | string[] | undefined {
  return Object.hasOwn(headers, name) ? headers[name] : undefined
}

/**
 * URI-encodes as SigV4 requires: every UTF-8 byte except the RFC 3986 unreserved characters
 * (`A-Z a-z 0-9 - _ . ~`) becomes `%XX` with upper-case hex; `/` is kept when `keepSlash`.
 */
export function uriEncode(value: string, keepSlash = false): string {
  let out = ''
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte)
    if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) out += c
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0')
  }
  return out
}

/**
 * The canonical URI for services other than S3: empty and `.` segments removed, `..` drops the
 * segment before it, and the result URI-encoded again on top of the encoding it arrived with
 * (`%3A` is signed as `%253A`), as `@smithy/signature-v4` (`uriEscapePath: true`) and botocore
 * do. An empty path is `/`.
 */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = []
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment)
  }
  const normalized =
    (rawPath.startsWith('/') ? '/' : '') +
    segments.join('/') +
    (segments.length > 0 && rawPath.endsWith('/') ? '/' : '')
  return uriEncode(normalized || '/', true)
}

/**
 * Decodes one query key or value as the application will read it (`+` is a space, as
 * URLSearchParams and Hono read it), so that what is verified is what is used.
 * @throws SigV4Error IncompleteSignature for invalid percent-encoding or UTF-8
 */
function decodeQueryComponent(component: string): string {
  try {
    return decodeURIComponent(component.replace(/\+/g, ' '))
  } catch {
    throw new SigV4Error(
      'IncompleteSignature',
      `The query string contains a syntax error: ${JSON.stringify(component)} is not valid percent-encoding.`,
    )
  }
}

/**
 * The canonical query string: each key and value decoded, then URI-encoded (unreserved kept),
 * pairs sorted by key and then by value (code-unit order of the encoded text), a key without `=`
 * given an empty value, joined with `&`.
 * @throws SigV4Error IncompleteSignature for invalid percent-encoding
 */
export function canonicalQueryString(rawQuery: string): string {
  const pairs: [string, string][] = []
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue
    const eq = piece.indexOf('=')
    const key = eq === -1 ? piece : piece.slice(0, eq)
    const value = eq === -1 ? '' : piece.slice(eq + 1)
    pairs.push([uriEncode(decodeQueryComponent(key)), uriEncode(decodeQueryComponent(value))])
  }
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
  pairs.sort(([ak, av], [bk, bv]) => cmp(ak, bk) || cmp(av, bv))
  return pairs.map(([k, v]) => `${k}=${v}`).join('&')
}

/** A header value for the canonical request: trimmed, runs of spaces/tabs/newlines made one space. */
function canonicalHeaderValue(value: string | string[] | undefined): string {
  const trimAll = (v: string): string => v.replace(/[ \t\r\n]+/g, ' ').replace(/^ | $/g, '')
  if (value === undefined) return ''
  return Array.isArray(value) ? value.map(trimAll).join(',') : trimAll(value)
}

/** `YYYYMMDDTHHMMSSZ` (ISO 8601 basic format, UTC, whole seconds). */
function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
}

/** Parses an `X-Amz-Date` value; `undefined` unless it is a real UTC time in basic format. */
function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value)
  if (!m) return undefined
  const ms = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)
  return amzDate(ms) === value ? ms : undefined
}

interface ParsedAuthorization {
  accessKeyId: string
  scope: { date: string; region: string; service: string; terminator: string }
  signedHeaders: string[]
  signature: string
}

/** Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. */
function parseAuthorization(header: string, hasDate: boolean): ParsedAuthorization {
  const match = /^(\S+)(?:\s+([\s\S]*))?$/.exec(header.trim())
  const algorithm = match?.[1] ?? ''
  if (algorithm !== ALGORITHM) {
    throw new SigV4Error(
      'IncompleteSignature',
      `Unsupported Authorization scheme '${algorithm.slice(0, 64)}': only ${ALGORITHM} (Signature Version 4) is accepted.`,
    )
  }
  const params = new Map<string, string>()
  for (const part of (match?.[2] ?? '').split(',')) {
    const eq = part.indexOf('=')
    if (eq === -1) continue
    params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const missing = ['Credential', 'Signature', 'SignedHeaders']
    .filter((name) => !params.get(name))
    .map((name) => `Authorization header requires '${name}' parameter.`)
  if (!hasDate) {
    missing.push(
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )
  }
  if (missing.length > 0) throw new SigV4Error('IncompleteSignature', missing.join(' '))

  const credential = params.get('Credential')!
  const parts = credential.split('/')
  if (parts.length !== 5) {
    throw new SigV4Error(
      'IncompleteSignature',
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`,
    )
  }
  const [accessKeyId, date, region, service, terminator] = parts as [
    string,
    string,
    string,
    string,
    string,
  ]
  return {
    accessKeyId,
    scope: { date, region, service, terminator },
    signedHeaders: params.get('SignedHeaders')!.split(';'),
    signature: params.get('Signature')!,
  }
}

/**
 * Verifies a request signed with AWS Signature Version 4 in the `Authorization` header.
 *
 * Checks, in order: the header is present and well formed; `X-Amz-Date` is present and in
 * ISO 8601 basic format; the credential scope is `<date of X-Amz-Date>/<region>/<service>/
 * aws4_request`; `host` is a signed header; `X-Amz-Date` is within `maxClockSkewMs` of `now`
 * (both directions); no session token is present; the access key is known; an
 * `X-Amz-Content-SHA256` header (other than `UNSIGNED-PAYLOAD`) matches the body; and the
 * signature, recomputed with the secret key, equals the one given (compared in constant time).
 *
 * The canonical request is built as AWS SDKs build it for non-S3 services: method; the path
 * URI-encoded once more (see {@link canonicalUri}); the canonical query
 * (see {@link canonicalQueryString}); each signed header as `name:value` with values trimmed and
 * inner whitespace runs collapsed (several values joined by `,`); the signed header list; and the
 * payload hash (`X-Amz-Content-SHA256` when present, else the hex SHA-256 of the body).
 *
 * @returns the access key ID that signed the request
 * @throws SigV4Error with the AWS error code and message a client would get (see
 *   {@link SigV4ErrorCode}); answer it with {@link httpStatusForSigV4Error}
 */
export async function verifySigV4(
  request: SignedRequest,
  options: VerifySigV4Options,
): Promise<VerifiedSigV4> {
  const authorization = rawHeader(request.headers, 'authorization')
  const authValues = Array.isArray(authorization) ? authorization : [authorization ?? '']
  if (authValues.every((v) => v.trim() === '')) {
    throw new SigV4Error('MissingAuthenticationToken', 'Missing Authentication Token')
  }
  if (authValues.length > 1) {
    throw new SigV4Error('IncompleteSignature', 'Only one Authorization header is allowed.')
  }
  const dateHeader = headerValue(request.headers, 'x-amz-date')
  const auth = parseAuthorization(authValues[0]!, dateHeader !== undefined)

  const requestDate = dateHeader ?? ''
  const signedAt = parseAmzDate(requestDate)
  if (signedAt === undefined) {
    throw new SigV4Error(
      'IncompleteSignature',
      `Date must be in ISO-8601 'basic format'. Got '${requestDate.slice(0, 64)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    )
  }
  const { scope } = auth
  if (scope.date !== requestDate.slice(0, 8)) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scope.date}' != '${requestDate.slice(0, 8)}', from '${requestDate}'.`,
    )
  }
  if (scope.region !== options.region) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Credential should be scoped to a valid region, not '${scope.region}'. `,
    )
  }
  if (scope.service !== options.service) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Credential should be scoped to correct service: '${options.service}'. `,
    )
  }
  if (scope.terminator !== TERMINATOR) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${scope.terminator}'.`,
    )
  }
  if (!auth.signedHeaders.includes('host') && !auth.signedHeaders.includes(':authority')) {
    throw new SigV4Error(
      'InvalidSignatureException',
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    )
  }

  const skew = options.maxClockSkewMs ?? DEFAULT_SKEW_MS
  const now = options.now.getTime()
  const minutes = `${skew / 60_000} min.`
  if (signedAt < now - skew) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Signature expired: ${requestDate} is now earlier than ${amzDate(now - skew)} (${amzDate(now)} - ${minutes})`,
    )
  }
  if (signedAt > now + skew) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `Signature not yet current: ${requestDate} is still later than ${amzDate(now + skew)} (${amzDate(now)} + ${minutes})`,
    )
  }

  if (rawHeader(request.headers, 'x-amz-security-token') !== undefined) {
    throw new SigV4Error(
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    )
  }
  const secret = await options.lookupSecret(auth.accessKeyId)
  if (secret === undefined) {
    throw new SigV4Error(
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    )
  }

  const bodyHash = sha256Hex(request.body)
  const declaredHash = headerValue(request.headers, 'x-amz-content-sha256')
  if (
    declaredHash !== undefined &&
    declaredHash !== UNSIGNED_PAYLOAD &&
    declaredHash.toLowerCase() !== bodyHash
  ) {
    throw new SigV4Error(
      'InvalidSignatureException',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
  }

  const canonicalRequest = [
    request.method,
    canonicalUri(request.rawPath),
    canonicalQueryString(request.rawQuery),
    ...auth.signedHeaders.map(
      (name) =>
        `${name.toLowerCase()}:${canonicalHeaderValue(rawHeader(request.headers, name.toLowerCase()))}`,
    ),
    '',
    auth.signedHeaders.join(';'),
    declaredHash ?? bodyHash,
  ].join('\n')
  const credentialScope = [scope.date, scope.region, scope.service, TERMINATOR].join('/')
  // Header values are byte strings (one character per byte), so latin1 recovers the bytes the
  // client hashed; everything else in the canonical request is ASCII.
  const stringToSign = [
    ALGORITHM,
    requestDate,
    credentialScope,
    sha256Hex(Buffer.from(canonicalRequest, 'latin1')),
  ].join('\n')
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secret}`, scope.date), scope.region), scope.service),
    TERMINATOR,
  )
  const expected = Buffer.from(hmac(signingKey, stringToSign).toString('hex'), 'latin1')
  const given = Buffer.from(auth.signature, 'latin1')
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SigV4Error(
      'InvalidSignatureException',
      `${SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'${canonicalRequest}'\n\nThe String-to-Sign should have been\n'${stringToSign}'\n`,
    )
  }
  return { accessKeyId: auth.accessKeyId }
}
