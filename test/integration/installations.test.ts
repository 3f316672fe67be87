/**
 * Day-two operation of whole installations, each a real control plane run as `npm start` runs
 * it (a child process of `src/main.ts`):
 * - two installations with default settings (only AIRDOCK_DATA_DIR differs) side by side: each
 *   gets its own API and PostgreSQL port, and the second one's environment, whose port block
 *   the first one's environment holds, gets ports that were checked free;
 * - a control plane restarted from a shell with another PATH adopts every component and
 *   restarts none;
 * - `airdock stop` stops this data dir's control plane only, `airdock stop --all` leaves
 *   nothing of the installation running and the other installation untouched;
 * - a busy AIRDOCK_PORT is a one-line error, and nothing is left running.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, chmod, readFile, rm, stat } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listInstallationProcesses } from '../../src/cli/installation-processes.js'
import { runningControlPlane } from '../../src/platform/control-plane-pid.js'
import { readInstallationState } from '../../src/platform/installation.js'
import { isProcessAlive, readProcessStartTime } from '../../src/runtime/local/proc.js'
import { repoRoot, sharedRuntimeDir, waitFor } from '../support/control-plane.js'
import { registerCredentials } from '../support/credentials.js'
import { environmentClient, microEnvironmentBody } from '../support/mwaa-client.js'

const execFileAsync = promisify(execFile)

/** One installation: its settings variables (defaults but the data dir) and its process. */
interface Installation {
  variables: Record<string, string>
  dataDir: string
  child?: ChildProcess
  endpoint: string
}

/** The host's variables without any AIRDOCK_* setting, plus a fresh data dir. */
async function defaultInstallation(): Promise<Installation> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'airdock-install-'))
  await chmod(dataDir, 0o755)
  const host = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('AIRDOCK_'),
    ),
  )
  return {
    variables: {
      ...host,
      AIRDOCK_DATA_DIR: dataDir,
      AIRDOCK_RUNTIME_DIR: sharedRuntimeDir,
      AIRDOCK_LOG_LEVEL: 'warn',
    },
    dataDir,
    endpoint: '',
  }
}

/** Starts `npm start`'s entry point for `installation` and waits until its API answers. */
async function start(installation: Installation, env: Record<string, string> = {}): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')], {
    cwd: repoRoot,
    env: { ...installation.variables, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  installation.child = child
  const running = await waitFor(
    'the control plane to listen',
    async () => {
      if (child.exitCode !== null) throw new Error(`control plane exited ${child.exitCode}`)
      const cp = await runningControlPlane(installation.dataDir)
      return cp?.endpoint && cp.pid === child.pid ? cp : undefined
    },
    180_000,
    250,
  )
  installation.endpoint = running.endpoint
  registerCredentials(running.endpoint, installation.dataDir)
}

/** Runs the `airdock` CLI for `installation`. @returns its stdout */
async function airdock(installation: Installation, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/cli.ts'), ...args],
    { cwd: repoRoot, env: installation.variables, timeout: 180_000 },
  )
  return stdout
}

/** Pid and start time of every live process the installation recorded. */
async function liveProcesses(installation: Installation): Promise<Map<string, number>> {
  const listing = await listInstallationProcesses(installation.dataDir)
  return new Map(
    listing.components
      .filter((c) => c.pid !== undefined)
      .map((c) => [`${c.group}/${c.name}`, c.pid!]),
  )
}

/** Creates a micro environment `name` on a folder bucket holding one DAG. */
async function createEnvironment(installation: Installation, name: string) {
  const dags = path.join(installation.dataDir, 'buckets', `${name}-bucket`, 'dags')
  await mkdir(dags, { recursive: true })
  await copyFile(path.join(repoRoot, 'test/fixtures/dags/burst.py'), path.join(dags, 'burst.py'))
  const client = environmentClient(() => installation.endpoint, name)
  const created = await client.api(
    'PUT',
    `/environments/${name}`,
    microEnvironmentBody(`${name}-bucket`),
  )
  expect(created.status).toBe(200)
  return client
}

describe('two installations with default settings on one machine', () => {
  const a = {} as Installation
  const b = {} as Installation

  beforeAll(async () => {
    Object.assign(a, await defaultInstallation())
    Object.assign(b, await defaultInstallation())
    await start(a)
    await start(b)
  }, 600_000)

  afterAll(async () => {
    for (const installation of [a, b]) {
      if (!installation.dataDir) continue
      await airdock(installation, 'stop', '--all').catch(() => undefined)
      installation.child?.kill('SIGKILL')
      await rm(installation.dataDir, { recursive: true, force: true })
    }
  }, 600_000)

  it('each has its own API port, PostgreSQL port and AWS config file', async () => {
    expect(a.endpoint).not.toBe(b.endpoint)
    const [stateA, stateB] = await Promise.all([
      readInstallationState(a.dataDir),
      readInstallationState(b.dataDir),
    ])
    expect(stateA.postgresPort).toBeDefined()
    expect(stateA.postgresPort).not.toBe(stateB.postgresPort)
    expect(`http://127.0.0.1:${stateB.apiPort}`).toBe(b.endpoint)
    expect(await readFile(path.join(b.dataDir, 'config'), 'utf8')).toContain(
      `endpoint_url = ${b.endpoint}`,
    )
    // The AWS CLI finds the endpoint through $AIRDOCK_DATA_DIR/config alone (no --endpoint-url).
    const host = Object.fromEntries(
      Object.entries(process.env).filter(
        ([k]) => !k.startsWith('AWS_') && !k.startsWith('AIRDOCK_'),
      ),
    )
    const { stdout } = await execFileAsync(
      path.join(repoRoot, '.tools/venv/bin/aws'),
      ['mwaa', 'list-environments', '--output', 'json'],
      {
        env: {
          ...host,
          AWS_CONFIG_FILE: path.join(b.dataDir, 'config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(b.dataDir, 'credentials'),
          AWS_PROFILE: 'airdock',
        },
      },
    )
    expect(JSON.parse(stdout)).toEqual({ Environments: [] })
    // The CLI finds the endpoint by itself (no AIRDOCK_PORT): ListEnvironments through `airdock iam`.
    expect(await airdock(b, 'iam', 'list-users')).toContain('UserName')
  })

  it("gives the second installation's environment free ports instead of the first one's", async () => {
    const one = await createEnvironment(a, 'one')
    await one.waitForStatus('AVAILABLE', 600_000)
    const two = await createEnvironment(b, 'two')
    await two.waitForStatus('AVAILABLE', 600_000)
    const urlOne = (await one.environment()).WebserverUrl as string
    const urlTwo = (await two.environment()).WebserverUrl as string
    expect(urlOne).not.toBe(urlTwo)
    // Each answers with its own Airflow: its own DAG run list through InvokeRestApi.
    for (const client of [one, two]) {
      const dags = await waitFor('the DAG', async () => {
        const r = await client.invokeRestApi('GET', '/dags/burst')
        return r.status === 200 ? r : undefined
      })
      expect(dags.json.dag_id).toBe('burst')
    }
    // No port is listened on by both installations.
    const ports = async (i: Installation) =>
      (await listInstallationProcesses(i.dataDir)).components.flatMap((c) => c.ports)
    const [portsA, portsB] = [await ports(a), await ports(b)]
    expect(portsA.length).toBeGreaterThan(0)
    expect(portsA.filter((p) => portsB.includes(p))).toEqual([])
    const status = await airdock(b, 'status')
    expect(status).toMatch(/two\s+api-server-1\s+api-server\s+\d+/)
    expect(status).toMatch(/platform\s+postgres\s+postgres\s+\d+\s+\d+/)
  }, 1_500_000)

  it('a control plane restarted with another PATH restarts no component', async () => {
    const before = await liveProcesses(a)
    expect([...before.keys()].filter((k) => !k.startsWith('platform/')).length).toBeGreaterThan(2)
    expect(await airdock(a, 'stop')).toContain('stopped the control plane')
    await start(a, { PATH: `/usr/local/games:${a.variables.PATH}` })
    const one = environmentClient(() => a.endpoint, 'one')
    await one.waitForStatus('AVAILABLE', 300_000)
    // Several reconcile passes (resync every 3 s) have looked at every component by now.
    await new Promise((r) => setTimeout(r, 10_000))
    expect(await liveProcesses(a)).toEqual(before)
    expect((await one.environment()).Status).toBe('AVAILABLE')
  }, 600_000)

  it('`airdock stop` stops only its own control plane, `stop --all` only its own processes', async () => {
    const cpA = (await runningControlPlane(a.dataDir))!
    const processesA = await liveProcesses(a)
    const processesB = await liveProcesses(b)
    expect(await airdock(b, 'stop')).toContain(`stopped the control plane`)
    expect(await runningControlPlane(b.dataDir)).toBeUndefined()
    // Environments keep running without their control plane.
    expect(await liveProcesses(b)).toEqual(processesB)
    await airdock(b, 'stop', '--all')
    expect(await liveProcesses(b)).toEqual(new Map())
    for (const pid of processesB.values()) {
      await waitFor(
        `pid ${pid} to end`,
        async () => (await readProcessStartTime(pid)) === undefined,
        30_000,
        200,
      )
    }
    // The other installation is untouched.
    expect(await isProcessAlive(cpA.pid, cpA.startTimeTicks)).toBe(true)
    expect(await liveProcesses(a)).toEqual(processesA)
    expect(
      await stat(path.join(b.dataDir, 'control-plane.pid')).catch(() => undefined),
    ).toBeUndefined()
  }, 600_000)
})

describe('a busy API port', () => {
  it('is a one-line error naming the port and the setting, with nothing left running', async () => {
    const installation = await defaultInstallation()
    const blocker = net.createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')],
        {
          cwd: repoRoot,
          env: { ...installation.variables, AIRDOCK_PORT: String(port) },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
      expect(code).toBe(2)
      expect(stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(`^airdock: port ${port} \\(AIRDOCK_PORT\\) is already in use`),
        ),
      ])
      expect(await runningControlPlane(installation.dataDir)).toBeUndefined()
      expect((await listInstallationProcesses(installation.dataDir)).components).toEqual([])
    } finally {
      await new Promise((r) => blocker.close(r))
      await rm(installation.dataDir, { recursive: true, force: true })
    }
  }, 120_000)
})
