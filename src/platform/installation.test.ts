import { mkdtemp, readFile, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  choosePort,
  PortInUseError,
  readInstallationState,
  recordInstallationState,
  writeAwsConfigFile,
} from './installation.js'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})
async function occupied(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => new Promise((r) => server.close(r)))
  return (server.address() as net.AddressInfo).port
}
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airdock-installation-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

describe('choosePort', () => {
  it('refuses a taken explicit port, naming the port and the setting', async () => {
    const port = await occupied()
    const err = await choosePort({ preferred: port, explicit: true, setting: 'AIRDOCK_X' }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(PortInUseError)
    expect((err as Error).message).toContain(`port ${port} (AIRDOCK_X)`)
  })

  it('moves past a taken default or recorded port, and keeps a port that is ours', async () => {
    const port = await occupied()
    expect(await choosePort({ preferred: port, explicit: false, setting: 'S' })).toBeGreaterThan(
      port,
    )
    expect(
      await choosePort({ preferred: 1, recorded: port, explicit: false, setting: 'S' }),
    ).toBeGreaterThan(port)
    expect(
      await choosePort({
        preferred: port,
        explicit: true,
        setting: 'S',
        isOurs: (p) => p === port,
      }),
    ).toBe(port)
  })
})

describe('installation state', () => {
  it('merges recorded ports and writes the AWS config file', async () => {
    const dir = await tempDir()
    expect(await readInstallationState(dir)).toEqual({})
    await recordInstallationState(dir, { apiPort: 8781 })
    await recordInstallationState(dir, { postgresPort: 8733 })
    expect(await readInstallationState(dir)).toEqual({ apiPort: 8781, postgresPort: 8733 })
    await writeAwsConfigFile(dir, { region: 'eu-west-1', endpoint: 'http://127.0.0.1:8781' })
    const config = await readFile(path.join(dir, 'config'), 'utf8')
    expect(config).toContain('[profile airdock]')
    expect(config).toContain('endpoint_url = http://127.0.0.1:8781')
    expect(config).toContain('region = eu-west-1')
  })
})
