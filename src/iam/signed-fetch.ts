/**
 * The client side of airdock's authentication, for the `airdock` CLI and tests: reading an AWS
 * shared-credentials file and sending a request signed with AWS Signature Version 4 (service
 * `airflow`), exactly as the AWS SDKs sign rest-json requests (`@smithy/signature-v4`).
 */
import { readFile } from 'node:fs/promises'
import { Sha256 } from '@aws-crypto/sha256-js'
import { SignatureV4 } from '@smithy/signature-v4'

/** Static AWS credentials. */
export interface Credentials {
  accessKeyId: string
  secretAccessKey: string
}

/**
 * Reads one profile's static keys from an AWS shared-credentials file (INI: `[profile]` sections
 * of `key = value` lines; `#` and `;` start comment lines).
 * @param file - e.g. `$AIRDOCK_DATA_DIR/credentials`
 * @param profile - section name (default `airdock`)
 * @throws Error when the file cannot be read, or the profile lacks `aws_access_key_id` or
 *   `aws_secret_access_key`
 */
export async function readCredentialsFile(file: string, profile = 'airdock'): Promise<Credentials> {
  const text = await readFile(file, 'utf8')
  const sections = new Map<string, Map<string, string>>()
  let current: Map<string, string> | undefined
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[\s*([^\]]+?)\s*\]$/.exec(line)
    if (header) {
      // The config file spells sections `[profile NAME]`; the credentials file `[NAME]`.
      const name = (header[1] ?? '').replace(/^profile\s+/, '')
      current = sections.get(name) ?? new Map<string, string>()
      sections.set(name, current)
      continue
    }
    const eq = line.indexOf('=')
    if (current === undefined || eq < 0) continue
    current.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim())
  }
  const section = sections.get(profile)
  const accessKeyId = section?.get('aws_access_key_id')
  const secretAccessKey = section?.get('aws_secret_access_key')
  if (!accessKeyId || !secretAccessKey) {
    throw new Error(
      `${file}: profile [${profile}] has no aws_access_key_id / aws_secret_access_key`,
    )
  }
  return { accessKeyId, secretAccessKey }
}

/** What {@link signedFetch} signs with. */
export interface SigningOptions {
  credentials: Credentials
  /** Signing region (`AIRDOCK_REGION`). */
  region: string
  /** Signing instant (default now; tests use it to make expired signatures). */
  signingDate?: Date
}

/** A request to sign: method (default GET), headers (a `host` header overrides the URL's), body. */
export interface RequestToSign {
  method?: string
  headers?: Record<string, string>
  body?: string | Uint8Array | undefined
}

/**
 * `fetch` with a SigV4 `Authorization` header (service `airflow`). The path is signed as the
 * SDKs do for rest-json services (each segment URI-encoded once more).
 */
export async function signedFetch(
  url: string,
  init: RequestToSign,
  options: SigningOptions,
): Promise<Response> {
  return fetch(url, {
    method: init.method ?? 'GET',
    headers: await signRequest(url, init, options),
    ...(init.body === undefined ? {} : { body: init.body }),
  })
}

/** @returns every header to send for `url`, including `authorization` and `x-amz-date` */
export async function signRequest(
  url: string,
  init: RequestToSign,
  options: SigningOptions,
): Promise<Record<string, string>> {
  const target = new URL(url)
  const signer = new SignatureV4({
    service: 'airflow',
    region: options.region,
    credentials: options.credentials,
    sha256: Sha256,
  })
  const query: Record<string, string | string[]> = {}
  for (const [key, value] of target.searchParams) {
    const existing = query[key]
    query[key] = existing === undefined ? value : [...[existing].flat(), value]
  }
  const method = init.method ?? 'GET'
  const signed = await signer.sign(
    {
      method,
      protocol: target.protocol,
      hostname: target.hostname,
      port: Number(target.port),
      path: target.pathname,
      query,
      headers: { host: target.host, ...(init.headers ?? {}) },
      body: init.body,
    },
    options.signingDate ? { signingDate: options.signingDate } : {},
  )
  return signed.headers
}
