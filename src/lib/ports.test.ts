import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { findFreePort, isPortFree } from './ports.js'

const servers: net.Server[] = []
/** Listens on an OS-chosen port of `host` and returns it. */
async function occupy(host: string): Promise<number> {
  const server = net.createServer()
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return (server.address() as net.AddressInfo).port
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
})

describe('isPortFree', () => {
  it('is false for a port taken on 127.0.0.1 and on the wildcard address', async () => {
    expect(await isPortFree(await occupy('127.0.0.1'))).toBe(false)
    expect(await isPortFree(await occupy('0.0.0.0'))).toBe(false)
  })

  it('is true once the listener closed', async () => {
    const port = await occupy('127.0.0.1')
    await new Promise((r) => servers.pop()!.close(r))
    expect(await isPortFree(port)).toBe(true)
  })
})

describe('findFreePort', () => {
  it('skips taken and excluded ports', async () => {
    const taken = await occupy('127.0.0.1')
    const found = await findFreePort(taken, { exclude: new Set([taken + 1]) })
    expect(found).toBeGreaterThan(taken + 1)
    expect(await isPortFree(found)).toBe(true)
  })

  it('throws when the range has no free port', async () => {
    const taken = await occupy('127.0.0.1')
    await expect(findFreePort(taken, { limit: 1 })).rejects.toThrow(/no free TCP port/)
  })
})
