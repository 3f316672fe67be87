/**
 * Hands out an environment's loopback ports (gateway, broker, api-servers) and keeps them
 * usable. A port is checked free when it is handed out, and again whenever the component that
 * owns it has no live process (before its first start, after it exited or while it crash-loops):
 * a port taken by another program then (another installation, anything else on the machine) is
 * moved to a free one instead of the component crash-looping on `EADDRINUSE`. A component that
 * runs keeps its port (it is the reason the port is busy).
 *
 * New ports come from `AIRDOCK_COMPONENT_PORT_BASE` upward, skipping every port another
 * environment of this installation owns (recorded, or its port block's).
 */
import type { EnvironmentPorts, EnvironmentRecord } from '../domain/environment.js'
import { findFreePort, isPortFree } from '../lib/ports.js'
import type { ComponentState } from '../runtime/driver.js'
import { environmentPorts, portsForBlock } from '../airflow/components.js'
import { GATEWAY_COMPONENT_NAME } from '../gateway/gateway-component.js'

/** Name of the broker component (one per Celery environment). */
const BROKER_COMPONENT_NAME = 'broker-1'

/** Every port in `ports`. */
export function portsOf(ports: EnvironmentPorts): number[] {
  return [ports.gateway, ports.broker, ...ports.apiServers]
}

/** The components owning each port, in the order of {@link portsOf}. */
function owners(
  ports: EnvironmentPorts,
): { name: string; port: number; set: (p: number) => void }[] {
  return [
    { name: GATEWAY_COMPONENT_NAME, port: ports.gateway, set: (p) => (ports.gateway = p) },
    { name: BROKER_COMPONENT_NAME, port: ports.broker, set: (p) => (ports.broker = p) },
    ...ports.apiServers.map((port, i) => ({
      name: `api-server-${i + 1}`,
      port,
      set: (p: number) => (ports.apiServers[i] = p),
    })),
  ]
}

/** What {@link ensureEnvironmentPorts} decided. */
export interface PortAssignment {
  ports: EnvironmentPorts
  /** True when `ports` differs from what the record holds (it must be written). */
  changed: boolean
  /** One entry per moved port, e.g. `api-server-1: 18002 → 18040 (taken)`. */
  moved: string[]
}

/**
 * The ports `record`'s components should use now.
 * @param states - the driver's view of the environment's components (live ones keep their port)
 * @param others - reads every other environment of the installation (their ports are never
 *   handed out); called only when a port has to move, so a pass that moves nothing reads no store
 * @param base - `AIRDOCK_COMPONENT_PORT_BASE`
 * @throws NoFreePortError when no free port is left to move to
 */
export async function ensureEnvironmentPorts(
  record: Pick<EnvironmentRecord, 'observation' | 'portBlock' | 'name'>,
  states: readonly ComponentState[],
  others: () => Promise<readonly Pick<EnvironmentRecord, 'observation' | 'portBlock'>[]>,
  base: number,
): Promise<PortAssignment> {
  const recorded = record.observation.ports
  const ports = structuredClone(environmentPorts(record, base))
  let taken: Set<number> | undefined
  const takenPorts = async (): Promise<Set<number>> => {
    if (taken) return taken
    taken = new Set<number>(portsOf(ports))
    for (const other of await others()) {
      for (const p of portsOf(environmentPorts(other, base))) taken.add(p)
      for (const p of portsOf(portsForBlock(base, other.portBlock))) taken.add(p)
    }
    return taken
  }
  const moved: string[] = []
  for (const owner of owners(ports)) {
    const state = states.find((s) => s.name === owner.name)
    // A process that exists may be the listener itself; between restarts (exited, or the
    // backoff of a crash loop) there is none, and a busy port is someone else's.
    const live = state?.pid !== undefined && state.phase !== 'exited'
    if (live || (await isPortFree(owner.port))) continue
    const exclude = await takenPorts()
    const next = await findFreePort(base, { exclude, limit: 10_000 })
    exclude.add(next)
    owner.set(next)
    moved.push(`${owner.name}: ${owner.port} → ${next} (taken by another program)`)
  }
  return { ports, changed: recorded === undefined || moved.length > 0, moved }
}
