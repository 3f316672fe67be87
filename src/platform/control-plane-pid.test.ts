import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readProcessStartTime } from '../runtime/local/proc.js'
import {
  acquireControlPlaneLock,
  controlPlanePidFile,
  ControlPlaneRunningError,
  runningControlPlane,
} from './control-plane-pid.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airdock-pid-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('control-plane pid file', () => {
  it('records this process and its endpoint, and is removed on release', async () => {
    const dir = await tempDir()
    const lock = await acquireControlPlaneLock(dir)
    await lock.setEndpoint('http://127.0.0.1:1234')
    const running = await runningControlPlane(dir)
    expect(running).toMatchObject({ pid: process.pid, endpoint: 'http://127.0.0.1:1234' })
    await lock.release()
    expect(await runningControlPlane(dir)).toBeUndefined()
    await expect(readFile(controlPlanePidFile(dir))).rejects.toThrow()
  })

  it('refuses a second control plane while the first lives', async () => {
    const dir = await tempDir()
    const child = spawn('sleep', ['30'], { stdio: 'ignore' })
    cleanups.push(() => Promise.resolve(child.kill('SIGKILL')))
    await new Promise((r) => child.once('spawn', r))
    const startTimeTicks = await readProcessStartTime(child.pid!)
    const other = {
      pid: child.pid,
      startTimeTicks,
      endpoint: 'http://x',
      dataDir: dir,
      startedAt: '',
    }
    await writeFile(controlPlanePidFile(dir), JSON.stringify(other))
    const err = await acquireControlPlaneLock(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ControlPlaneRunningError)
    expect((err as Error).message).toContain(`pid ${child.pid}`)
  })

  it('replaces a stale pid file (its process is gone, or its pid was reused)', async () => {
    const dir = await tempDir()
    const stale = {
      pid: process.pid,
      startTimeTicks: '1',
      endpoint: '',
      dataDir: dir,
      startedAt: '',
    }
    await writeFile(controlPlanePidFile(dir), JSON.stringify(stale))
    expect(await runningControlPlane(dir)).toBeUndefined()
    const lock = await acquireControlPlaneLock(dir)
    expect((await runningControlPlane(dir))?.pid).toBe(process.pid)
    await lock.release()
  })
})
