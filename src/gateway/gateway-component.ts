/**
 * The component spec of an environment's gateway process (`gateway-main.ts`), which the
 * reconciler hands to the driver next to the Airflow components.
 */
import { writeFile, readFile, rename } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ComponentSpec } from '../runtime/driver.js'
import type { Upstream } from './gateway.js'

const here = fileURLToPath(import.meta.url)
/** The repository (or package) root: where `tsx` resolves from. */
const packageRoot = path.resolve(path.dirname(here), '../..')
/** Run from source (`tsx`) or from compiled JavaScript, like the control plane itself. */
const entryArgs = here.endsWith('.ts')
  ? ['--import', 'tsx', path.join(path.dirname(here), 'gateway-main.ts')]
  : [path.join(path.dirname(here), 'gateway-main.js')]

/** Inputs of the gateway's spec. */
export interface GatewayComponentInput {
  /** Port of `WebserverUrl`. */
  port: number
  /** Addresses to listen on (`gatewayListenAddresses`). */
  hosts: string[]
  /** The control plane's base URL, which checks web login and CLI tokens. */
  controlPlaneUrl: string
  /** The environment's name. */
  environment: string
  /** File the reconciler writes the api-server list to. */
  upstreamsFile: string
  /** Where the process's output goes. */
  logFile: string
  /** The host's `PATH` recorded for the environment (`EnvironmentObservation.host`). */
  hostPath: string
  /** The Node.js executable recorded for the environment (default: this process's). */
  nodeExecutable?: string
}

/** The gateway's component name within its environment. */
export const GATEWAY_COMPONENT_NAME = 'gateway-1'

/** The gateway process of one environment (`gateway-1`). */
export function gatewayComponentSpec(input: GatewayComponentInput): ComponentSpec {
  return {
    name: GATEWAY_COMPONENT_NAME,
    component: 'gateway',
    command: input.nodeExecutable ?? process.execPath,
    args: [
      ...entryArgs,
      ...input.hosts.flatMap((host) => ['--host', host]),
      '--port',
      String(input.port),
      '--upstreams',
      input.upstreamsFile,
      '--control-plane',
      input.controlPlaneUrl,
      '--environment',
      input.environment,
    ],
    env: { PATH: input.hostPath, NODE_ENV: 'production' },
    cwd: packageRoot,
    logFile: input.logFile,
    stopGracePeriodMs: 5_000,
  }
}

/**
 * Writes the upstream list for the gateway process if it changed (atomically: temp file, then
 * rename, so the gateway never reads half a file).
 */
export async function writeUpstreams(file: string, upstreams: Upstream[]): Promise<void> {
  const text = JSON.stringify(upstreams)
  if ((await readFile(file, 'utf8').catch(() => '')) === text) return
  const tmp = `${file}.tmp`
  await writeFile(tmp, text, { mode: 0o644 })
  await rename(tmp, file)
}
