/**
 * The test-network harness (test/support/netns.ts) itself: a second network namespace reaches a
 * server bound to the link's host address (what PUBLIC_ONLY binds) but not one bound to loopback
 * (what PRIVATE_ONLY binds), and destroy() leaves no namespace or veth behind. Traffic goes only
 * to the test link's addresses and to loopback.
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestNetwork, linkExists, listNamespaces } from '../support/netns.js'
import type { TestNetwork } from '../support/netns.js'

let network: TestNetwork | undefined
let publicServer: Server | undefined
let loopbackServer: Server | undefined

/** Starts an HTTP server on `host`, port 0, that answers every request with `name`. */
async function startServer(host: string, name: string): Promise<Server> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/plain' })
    response.end(name)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  return server
}

/** Stops a server started by startServer, dropping kept-alive connections. */
async function stopServer(server: Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

function portOf(server: Server | undefined): number {
  return (server?.address() as AddressInfo).port
}

function net(): TestNetwork {
  if (network === undefined) throw new Error('test network was not created')
  return network
}

beforeAll(async () => {
  network = await createTestNetwork()
  publicServer = await startServer(network.hostAddress, 'public')
  loopbackServer = await startServer('127.0.0.1', 'loopback')
})

afterAll(async () => {
  await stopServer(publicServer)
  await stopServer(loopbackServer)
  await network?.destroy()
})

describe('test network (ip netns + veth)', () => {
  it('creates a namespace joined by a veth pair on a private /30 in 10.213.0.0/16', async () => {
    const n = net()
    expect(n.namespace).toMatch(/^airdock-t-[0-9a-f]+$/)
    expect(n.hostInterface.length).toBeLessThanOrEqual(15)
    expect(n.namespaceInterface.length).toBeLessThanOrEqual(15)
    expect(n.hostAddress).toMatch(/^10\.213\.\d+\.\d+$/)
    expect(n.namespaceAddress).toMatch(/^10\.213\.\d+\.\d+$/)
    const last = (address: string): number => Number(address.split('.')[3])
    expect(n.hostAddress.split('.').slice(0, 3)).toEqual(n.namespaceAddress.split('.').slice(0, 3))
    expect(last(n.hostAddress) % 4).toBe(1)
    expect(last(n.namespaceAddress)).toBe(last(n.hostAddress) + 1)
    expect(await listNamespaces()).toContain(n.namespace)
    expect(await linkExists(n.hostInterface)).toBe(true)
  })

  it('both servers answer from the root namespace', async () => {
    const n = net()
    const viaHost = await fetch(`http://${n.hostAddress}:${portOf(publicServer)}/`)
    expect(await viaHost.text()).toBe('public')
    const viaLoopback = await fetch(`http://127.0.0.1:${portOf(loopbackServer)}/`)
    expect(await viaLoopback.text()).toBe('loopback')
  })

  it('the namespace reaches the server bound to the host address', async () => {
    const n = net()
    const result = await n.fetchFromNamespace(`http://${n.hostAddress}:${portOf(publicServer)}/`)
    expect(result).toEqual({ ok: true, status: 200, body: 'public' })
  })

  it('the namespace cannot reach the server bound to loopback', async () => {
    const n = net()
    // 127.0.0.1 inside the namespace is the namespace's own loopback.
    const direct = await n.fetchFromNamespace(`http://127.0.0.1:${portOf(loopbackServer)}/`, 3000)
    expect(direct.ok).toBe(false)
    if (!direct.ok) expect(direct.error).toMatch(/ECONNREFUSED|TimeoutError/)
    // The loopback server's port on the host's link address: nothing listens there.
    const viaLink = await n.fetchFromNamespace(
      `http://${n.hostAddress}:${portOf(loopbackServer)}/`,
      3000,
    )
    expect(viaLink.ok).toBe(false)
    if (!viaLink.ok) expect(viaLink.error).toMatch(/ECONNREFUSED/)
  })

  it('destroy() removes the namespace and the veth, and is idempotent', async () => {
    const n = net()
    await n.destroy()
    expect(await listNamespaces()).not.toContain(n.namespace)
    expect(await linkExists(n.hostInterface)).toBe(false)
    await n.destroy()
    const after = await n.fetchFromNamespace(`http://${n.hostAddress}:${portOf(publicServer)}/`)
    expect(after.ok).toBe(false)
  })
})
