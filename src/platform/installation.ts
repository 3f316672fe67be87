/**
 * What one installation (one `$AIRDOCK_DATA_DIR`) recorded about itself at its first start, so
 * that two installations with default settings run side by side on one machine and each keeps
 * its ports across restarts:
 *
 * - `$AIRDOCK_DATA_DIR/installation.json`: `{ apiPort, postgresPort }`, the ports chosen when
 *   the settings left them open (8780 / 8732, or the next free port when those were taken);
 * - `$AIRDOCK_DATA_DIR/config`: an AWS config file (profile `airdock`: region, endpoint_url),
 *   the DESIGN.md contract, so the AWS CLI and SDKs find this installation's endpoint with
 *   `AWS_CONFIG_FILE=$AIRDOCK_DATA_DIR/config AWS_PROFILE=airdock`.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { findFreePort, isPortFree } from '../lib/ports.js'

/** The recorded state (every member optional: an older data dir has none). */
export interface InstallationState {
  /** Port of the MWAA API, when `AIRDOCK_PORT` was unset at the first start. */
  apiPort?: number
  /** Port of the embedded PostgreSQL, when `AIRDOCK_POSTGRES_PORT` was unset. */
  postgresPort?: number
}

/** Thrown when a port a setting names (or the only candidate) is taken by another program. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    readonly setting: string,
  ) {
    super(
      `port ${port} (${setting}) is already in use by another program: stop it, or set ${setting} to a free port`,
    )
  }
}

const STATE_FILE = 'installation.json'

/** Reads `installation.json` of `dataDir` ({} when absent or unreadable). */
export async function readInstallationState(dataDir: string): Promise<InstallationState> {
  try {
    const parsed = JSON.parse(
      await readFile(path.join(dataDir, STATE_FILE), 'utf8'),
    ) as InstallationState
    return typeof parsed === 'object' && parsed !== null ? parsed : {}
  } catch {
    // First start (or a damaged file): nothing recorded yet.
    return {}
  }
}

/** Merges `update` into `installation.json` of `dataDir` (written atomically). */
export async function recordInstallationState(
  dataDir: string,
  update: InstallationState,
): Promise<void> {
  const next = { ...(await readInstallationState(dataDir)), ...update }
  const file = path.join(dataDir, STATE_FILE)
  await writeFile(`${file}.tmp`, JSON.stringify(next, null, 2) + '\n', { mode: 0o644 })
  await rename(`${file}.tmp`, file)
}

/**
 * Chooses a port for a listener of this installation.
 * - `explicit` (the setting was given): `preferred`, which must be free;
 * - otherwise `recorded` (or `preferred` the first time) when free, else the next free port.
 * @param options.isOurs - true when the port is busy because our own process listens there
 *   (an adopted PostgreSQL): then it is kept
 * @throws PortInUseError when an explicit port is taken
 */
export async function choosePort(options: {
  preferred: number
  recorded?: number
  explicit: boolean
  setting: string
  isOurs?: (port: number) => boolean
}): Promise<number> {
  const candidate = options.explicit ? options.preferred : (options.recorded ?? options.preferred)
  if (options.isOurs?.(candidate) || (await isPortFree(candidate))) return candidate
  if (options.explicit) throw new PortInUseError(candidate, options.setting)
  return findFreePort(candidate + 1)
}

/**
 * Writes `$AIRDOCK_DATA_DIR/config`, the AWS config file of this installation (profile
 * `airdock`). `endpoint_url` is honoured by the AWS CLI ≥ 1.29 / botocore ≥ 1.31 and the AWS SDKs
 * (AWS "service-specific endpoints"); `disable_host_prefix_injection` keeps the `api.`/`env.`
 * host prefixes MWAA's model adds away from a loopback endpoint.
 */
export async function writeAwsConfigFile(
  dataDir: string,
  options: { region: string; endpoint: string },
): Promise<void> {
  const body = [
    '# Written by airdock at every start: this installation’s MWAA endpoint.',
    '# Use: AWS_CONFIG_FILE=<this file> AWS_SHARED_CREDENTIALS_FILE=<credentials beside it> AWS_PROFILE=airdock',
    '[profile airdock]',
    `region = ${options.region}`,
    `endpoint_url = ${options.endpoint}`,
    'disable_host_prefix_injection = true',
    '',
  ].join('\n')
  const file = path.join(dataDir, 'config')
  await writeFile(`${file}.tmp`, body, { mode: 0o644 })
  await rename(`${file}.tmp`, file)
}
