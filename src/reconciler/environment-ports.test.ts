import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { portsForBlock } from '../airflow/components.js'
import type { EnvironmentObservation } from '../domain/environment.js'
import { isPortFree } from '../lib/ports.js'
import type { ComponentState } from '../runtime/driver.js'
import { ensureEnvironmentPorts, portsOf } from './environment-ports.js'

const servers: net.Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})
async function occupy(port: number): Promise<void> {
  const server = net.createServer()
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
}
/** A base whose first two blocks (32 ports) are free now. */
async function freeBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    const all = await Promise.all(Array.from({ length: 48 }, (_, i) => isPortFree(base + i)))
    if (all.every(Boolean)) return base
  }
}
const observation = { phase: 'creating' } as EnvironmentObservation
const running = (name: string): ComponentState => ({
  name,
  component: name,
  phase: 'running',
  pid: 1,
  restarts: 0,
  specHash: 'x',
})

describe('ensureEnvironmentPorts', () => {
  it("hands out the block's ports when they are free, and records them", async () => {
    const base = await freeBase()
    const result = await ensureEnvironmentPorts(
      { name: 'a', observation, portBlock: 0 },
      [],
      () => Promise.resolve([]),
      base,
    )
    expect(result).toEqual({ ports: portsForBlock(base, 0), changed: true, moved: [] })
  })

  it("moves a port another program took, never onto another environment's ports", async () => {
    const base = await freeBase()
    await occupy(base + 2) // api-server-1 of block 0
    const other = { observation, portBlock: 1 }
    const result = await ensureEnvironmentPorts(
      { name: 'a', observation, portBlock: 0 },
      [],
      () => Promise.resolve([other]),
      base,
    )
    expect(result.moved).toEqual([expect.stringMatching(/^api-server-1: \d+ → \d+/)])
    const moved = result.ports.apiServers[0]!
    expect(moved).not.toBe(base + 2)
    expect(portsOf(portsForBlock(base, 1))).not.toContain(moved)
    expect(portsOf(portsForBlock(base, 0))).not.toContain(moved)
    expect(await isPortFree(moved)).toBe(true)
  })

  it('keeps the port of a component that runs (its own listener makes it busy)', async () => {
    const base = await freeBase()
    const ports = portsForBlock(base, 0)
    await occupy(ports.gateway)
    const result = await ensureEnvironmentPorts(
      { name: 'a', observation: { ...observation, ports }, portBlock: 0 },
      [running('gateway-1')],
      () => Promise.reject(new Error('no store read when nothing moves')),
      base,
    )
    expect(result).toEqual({ ports, changed: false, moved: [] })
  })
})
