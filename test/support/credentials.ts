/**
 * Signed access to a test control plane: every control plane a test starts writes its
 * administrator's key to `$AIRDOCK_DATA_DIR/credentials` (profile `airdock`); this module
 * remembers that file per endpoint and signs requests with it, the way the AWS SDKs do.
 */
import path from 'node:path'
import {
  readCredentialsFile,
  signedFetch as sign,
  type Credentials,
} from '../../src/iam/signed-fetch.js'

const files = new Map<string, string>()

/** Remembers the credentials file of the control plane at `endpoint` (its origin). */
export function registerCredentials(endpoint: string, dataDir: string): void {
  files.set(new URL(endpoint).origin, path.join(dataDir, 'credentials'))
}

/**
 * The administrator credentials file of the control plane at `endpoint`.
 * @throws Error when no control plane was registered there
 */
export function credentialsFileFor(endpoint: string): string {
  const file = files.get(new URL(endpoint).origin)
  if (!file) throw new Error(`no control plane registered at ${endpoint}`)
  return file
}

/** The administrator's credentials of the control plane at `endpoint`. */
export function adminCredentials(endpoint: string): Promise<Credentials> {
  return readCredentialsFile(credentialsFileFor(endpoint))
}

/**
 * `fetch` with a SigV4 signature: by default as the administrator of the control plane the URL
 * points at; `credentials` signs as someone else.
 */
export async function signedFetch(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | undefined } = {},
  options: { region?: string; credentials?: Credentials; signingDate?: Date } = {},
): Promise<Response> {
  return sign(url, init, {
    credentials: options.credentials ?? (await adminCredentials(url)),
    region: options.region ?? 'us-east-1',
    ...(options.signingDate ? { signingDate: options.signingDate } : {}),
  })
}
