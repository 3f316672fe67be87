import { spawn } from 'node:child_process'
import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { CpuSampler, countEstablishedConnections, countInTcpTable } from './load-metrics.js'

describe('countInTcpTable', () => {
  it('counts established connections on the local port only', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:4650 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1',
      '   1: 0100007F:4650 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1',
      '   2: 0100007F:4650 0100007F:C351 01 00000000:00000000 00:00000000 00000000     0        0 3 1',
      '   3: 0100007F:C350 0100007F:4650 01 00000000:00000000 00:00000000 00000000     0        0 4 1',
      '   4: 0100007F:4650 0100007F:C352 06 00000000:00000000 00:00000000 00000000     0        0 5 1',
      '',
    ].join('\n')
    // 0x4650 = 18000: two established server-side sockets; the listener (0A), the client side
    // and a TIME_WAIT (06) are not counted.
    expect(countInTcpTable(table, 18000)).toBe(2)
    expect(countInTcpTable(table, 50000)).toBe(1)
  })

  it('sees real connections to a real listener', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const sockets: Socket[] = []
    try {
      for (let i = 0; i < 3; i++) {
        const socket = connect(port, '127.0.0.1')
        await new Promise((resolve) => socket.once('connect', resolve))
        sockets.push(socket)
      }
      expect(await countEstablishedConnections(port)).toBe(3)
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe('CpuSampler', () => {
  it('reports the CPU a busy process group used between two samples', async () => {
    // A process group of its own that keeps one core busy.
    const child = spawn(process.execPath, ['-e', 'for (;;) {}'], {
      detached: true,
      stdio: 'ignore',
    })
    try {
      const sampler = new CpuSampler()
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(await sampler.sample(child.pid!)).toBeUndefined()
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const percent = await sampler.sample(child.pid!)
      // Near 100 % of one core; a loaded 2-core test machine may give it less.
      expect(percent).toBeGreaterThan(30)
      expect(percent).toBeLessThan(150)
    } finally {
      child.kill('SIGKILL')
    }
  })
})
