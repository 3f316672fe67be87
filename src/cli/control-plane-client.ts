/**
 * How the `airdock` CLI reaches the running control plane of its data dir: the endpoint (from
 * `AIRDOCK_PORT`, the pid file or the recorded port) and SigV4-signed calls with the
 * administrator's credentials file.
 */
import path from 'node:path'
import { endpointFor, loadSettings, type Settings } from '../config/settings.js'
import { readCredentialsFile, signedFetch } from '../iam/signed-fetch.js'
import { runningControlPlane } from '../platform/control-plane-pid.js'
import { readInstallationState } from '../platform/installation.js'

/**
 * The endpoint of this data dir's control plane: `AIRDOCK_PORT`'s when set; otherwise the one
 * the running control plane recorded in its pid file, or the port the installation recorded.
 */
export async function controlPlaneEndpoint(settings: Settings): Promise<string> {
  if (settings.portIsExplicit) return settings.endpoint
  const running = await runningControlPlane(settings.dataDir)
  if (running?.endpoint) return running.endpoint
  const recorded = (await readInstallationState(settings.dataDir)).apiPort
  return recorded ? endpointFor(settings.host, recorded) : settings.endpoint
}

/** The CLI's global options that choose its credentials. */
export interface CliCredentials {
  /** AWS credentials file (default: `$AIRDOCK_DATA_DIR/credentials`). */
  credentials?: string
  /** Profile in it (default `airdock`). */
  profile: string
}

/**
 * Calls this data dir's running control plane, signed with the credentials file (SigV4).
 * @param pathname - e.g. `/airdock/v1/iam/users`
 * @returns the answer's JSON ({} for an empty body)
 * @throws Error with the API's message for an error answer
 */
export async function callControlPlane(
  options: CliCredentials,
  pathname: string,
  method = 'GET',
  body?: unknown,
): Promise<unknown> {
  const settings = loadSettings()
  const credentials = await readCredentialsFile(
    options.credentials ?? path.join(settings.dataDir, 'credentials'),
    options.profile,
  )
  const res = await signedFetch(
    `${await controlPlaneEndpoint(settings)}${pathname}`,
    {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    },
    { credentials, region: settings.region },
  )
  const text = await res.text()
  const json: unknown = text ? JSON.parse(text) : {}
  if (!res.ok) {
    const error = json as { message?: string; Message?: string }
    throw new Error(error.message ?? error.Message ?? `HTTP ${res.status}`)
  }
  return json
}
