/**
 * The `airdock` command line: runs the control plane, builds runtimes, and shows what MWAA's
 * API has no field for (airdock extensions).
 *
 *   airdock start                      run the control plane in the foreground (= npm start)
 *   airdock runtime build [VERSION]    build an Airflow runtime (default: the latest supported)
 *   airdock runtime list               supported versions and whether each is built
 *   airdock status NAME                components, their phases and restarts, ports, log folder
 *   airdock web-login NAME             the Airflow UI link, user name and password
 *   airdock stop-all                   stop every process airdock started under the data dir
 */
import path from 'node:path'
import { Command } from 'commander'
import { RuntimeManager } from './airflow/runtime-manager.js'
import { loadSettings } from './config/settings.js'
import { DEFAULT_AIRFLOW_VERSION, SUPPORTED_AIRFLOW_VERSIONS } from './domain/airflow-versions.js'
import { findExecutable } from './lib/find-executable.js'
import { createLogger } from './observability/logger.js'
import { PLATFORM_GROUP } from './platform/postgres-server.js'
import type { EnvironmentDescription } from './services/environment-service.js'
import { FORCED_STOP_GRACE_MS } from './reconciler/environment-reconciler.js'
import { LocalDriver } from './runtime/local/local-driver.js'

const program = new Command('airdock').description(
  'Managed Workflows for Apache Airflow that you run yourself',
)

program
  .command('start')
  .description('run the control plane in the foreground')
  .action(async () => {
    await import('./main.js')
  })

const runtime = program.command('runtime').description('Airflow runtimes (one per version)')
runtime
  .command('build')
  .argument('[version]', 'Airflow version', DEFAULT_AIRFLOW_VERSION)
  .description('build the runtime for an Airflow version from its committed lock file')
  .action(async (version: string) => {
    const settings = loadSettings()
    const manager = new RuntimeManager({
      runtimeDir: settings.runtimeDir,
      python: settings.python,
      uv: findExecutable(settings.uv, settings.hostPath) ?? settings.uv,
      hostPath: settings.hostPath,
      hostEnv: settings.hostEnv,
      logger: createLogger('warn'),
    })
    const existing = await manager.find(version)
    if (existing) {
      console.log(`Airflow ${version} runtime is built: ${existing.dir}`)
      return
    }
    console.log(`Building the Airflow ${version} runtime in ${manager.describe(version).dir} …`)
    const startedAt = Date.now()
    const built = await manager.ensure(version, (line) => console.log(`  ${line}`))
    console.log(
      `Airflow ${version} runtime built in ${((Date.now() - startedAt) / 1000).toFixed(1)} s: ${built.dir}`,
    )
  })
runtime
  .command('list')
  .description('supported Airflow versions and whether each runtime is built')
  .action(async () => {
    const settings = loadSettings()
    const manager = new RuntimeManager({
      runtimeDir: settings.runtimeDir,
      python: settings.python,
      uv: settings.uv,
      hostPath: settings.hostPath,
      hostEnv: settings.hostEnv,
      logger: createLogger('warn'),
    })
    for (const version of SUPPORTED_AIRFLOW_VERSIONS) {
      const built = await manager.find(version)
      console.log(`${version}\t${built ? `built\t${built.dir}` : 'not built'}`)
    }
  })

async function callExtension(pathname: string): Promise<unknown> {
  const settings = loadSettings()
  const res = await fetch(`http://127.0.0.1:${settings.port}${pathname}`)
  const body: unknown = await res.json()
  if (!res.ok) {
    const message = (body as { message?: string }).message ?? `HTTP ${res.status}`
    throw new Error(message)
  }
  return body
}

program
  .command('status')
  .argument('<name>', 'environment name')
  .description("an environment's components: phase, pid, restarts, health; workers desired/actual")
  .option('--json', 'print JSON')
  .action(async (name: string, options: { json?: boolean }) => {
    const body = (await callExtension(
      `/airdock/v1/environments/${encodeURIComponent(name)}`,
    )) as EnvironmentDescription
    if (options.json) {
      console.log(JSON.stringify(body, null, 2))
      return
    }
    console.log(`${name}: ${body.status}${body.message ? ` (${body.message})` : ''}`)
    const w = body.workers
    console.log(
      `workers: ${w.actual} running, ${w.starting} starting, ${w.draining} draining, ${w.desired} desired`,
    )
    console.log(
      `web servers: ${body.webservers.actual} running, ${body.webservers.desired} desired`,
    )
    if (body.scaling) {
      const load = body.scaling.webserverLoad
      console.log(
        `load: ${body.scaling.backlog} queued+running tasks${body.scaling.idleSince ? ` (idle since ${body.scaling.idleSince})` : ''}` +
          (load
            ? `; web servers ${load.cpuPercent.toFixed(0)}% CPU, ${load.activeConnections} connections`
            : ''),
      )
    }
    for (const c of body.components) {
      console.log(
        `  ${c.name.padEnd(16)} ${c.phase.padEnd(14)} pid ${String(c.pid ?? '-').padEnd(8)} restarts ${c.restarts}  ${c.healthy ? 'healthy' : 'not healthy'}`,
      )
    }
    console.log(`component logs: ${body.logsDir}`)
  })

program
  .command('web-login')
  .argument('<name>', 'environment name')
  .description('how to sign in to the Airflow UI of an environment')
  .action(async (name: string) => {
    const body = (await callExtension(
      `/airdock/v1/environments/${encodeURIComponent(name)}/web-login`,
    )) as {
      url: string
      localUrl: string
      username: string
      password: string
    }
    console.log(`Airflow UI: ${body.url}  (or ${body.localUrl})`)
    console.log(`user: ${body.username}  password: ${body.password}`)
  })

program
  .command('stop-all')
  .description(
    'stop every process airdock started under the data dir (environments and PostgreSQL)',
  )
  .action(async () => {
    const settings = loadSettings()
    const driver = await LocalDriver.open({
      runDir: path.join(settings.dataDir, 'run'),
      logger: createLogger('warn'),
      restartExited: false,
    })
    const groups = driver.groups()
    // Like DeleteEnvironment: draining workers get a few seconds, not their hours-long drain.
    for (const group of groups.filter((g) => g !== PLATFORM_GROUP)) {
      await driver.stopGroup(group, { maxStopGracePeriodMs: FORCED_STOP_GRACE_MS })
    }
    if (groups.includes(PLATFORM_GROUP)) await driver.stopGroup(PLATFORM_GROUP)
    await driver.close({ stopProcesses: false })
    console.log(`stopped ${groups.length} group(s)`)
  })

await program.parseAsync()
