/**
 * The environment's startup script (issue 5, reference §8–§9): a shell script from the bucket
 * that MWAA runs on every component before Airflow starts, with a 5-minute limit; the
 * variables it exports reach the Airflow processes, except MWAA's reserved ones, which are
 * restored.
 *
 * On one machine all components share the host, so airdock runs the script once per MWAA
 * component kind (`MWAA_AIRFLOW_COMPONENT` = `scheduler`, `worker`, `webserver`) whenever the
 * environment's inputs are prepared (create, update, control-plane start), and gives each kind's
 * processes the variables its run exported. Output goes to
 * `logs/startup-script/<kind>.log`.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { runCommand } from '../lib/run-command.js'

/**
 * Variables a startup script may not set (MWAA's documented reserved list, plus what airdock
 * itself owns): their values are restored after the script.
 */
const RESERVED_STARTUP_VARIABLES: ReadonlySet<string> = new Set([
  'MWAA__AIRFLOW__COMPONENT',
  'MWAA_AIRFLOW_COMPONENT',
  'AIRFLOW__WEBSERVER__SECRET_KEY',
  'AIRFLOW__API__SECRET_KEY',
  'AIRFLOW__API_AUTH__JWT_SECRET',
  'AIRFLOW__CORE__FERNET_KEY',
  'AIRFLOW_HOME',
  'AIRFLOW_CONFIG',
  'AIRFLOW__CELERY__BROKER_URL',
  'AIRFLOW__CELERY__RESULT_BACKEND',
  'AIRFLOW__CORE__EXECUTOR',
  'AIRFLOW__CORE__LOAD_EXAMPLES',
  'AIRFLOW__METRICS__METRICS_BLOCK_LIST',
  'SQL_ALCHEMY_CONN',
  'AIRFLOW__CORE__SQL_ALCHEMY_CONN',
  'AIRFLOW__DATABASE__SQL_ALCHEMY_CONN',
  'AIRFLOW__CELERY__DEFAULT_QUEUE',
  'AIRFLOW__OPERATORS__DEFAULT_QUEUE',
  'AIRFLOW_VERSION',
  'AIRFLOW_CONN_AWS_DEFAULT',
  'AWS_DEFAULT_REGION',
  'AWS_REGION',
  'PYTHONUNBUFFERED',
  'AIRFLOW__METRICS__STATSD_ALLOW_LIST',
  'AIRFLOW__METRICS__STATSD_ON',
  'AIRFLOW__METRICS__STATSD_HOST',
  'AIRFLOW__METRICS__STATSD_PORT',
  'AIRFLOW__METRICS__STATSD_PREFIX',
  'AIRFLOW__CELERY__WORKER_AUTOSCALE',
  'AIRFLOW__CORE__DAG_CONCURRENCY',
  'AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG',
  'AIRFLOW__CORE__PARALLELISM',
  'AIRFLOW__SCHEDULER__PARSING_PROCESSES',
  'AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT',
  'AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__REGION',
  'AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__PREDEFINED_QUEUES',
  'AIRFLOW_SCHEDULER_ALLOWED_RUN_ID_PATTERN',
  'AIRFLOW__WEBSERVER__BASE_URL',
  'AIRFLOW__API__BASE_URL',
  'AIRFLOW__CORE__EXECUTION_API_SERVER_URL',
  'AIRFLOW__CORE__DAGS_FOLDER',
  'AIRFLOW__CORE__PLUGINS_FOLDER',
  'AIRFLOW__LOGGING__BASE_LOG_FOLDER',
  'AIRFLOW_ENV_NAME',
  'AIRFLOW_ENV_ID',
  'PYTHONPATH',
  'PATH',
  'VIRTUAL_ENV',
  'HOME',
  // Shell bookkeeping that changes on every run.
  'PWD',
  'OLDPWD',
  'SHLVL',
  '_',
])

/** A startup script that failed; the message has its exit and last output lines. */
export class StartupScriptError extends Error {
  constructor(
    message: string,
    /** The script's full output. */
    readonly logFile: string,
  ) {
    super(message)
  }
}

/** What one run needs. */
export interface StartupScriptRun {
  /** The script's text. */
  script: string
  /** The environment the script starts with (the kind's Airflow environment). */
  env: Record<string, string>
  /** Working directory (AIRFLOW_HOME). */
  cwd: string
  /** Time limit, in ms (MWAA: 5 minutes). */
  timeoutMs: number
  /** Where its output goes. */
  logFile: string
}

/**
 * Runs the script with bash (`source`d, so its `export`s are seen) and returns what it
 * exported: variables new or changed compared with `env`, without the reserved ones.
 * @throws StartupScriptError when it exits non-zero or runs past `timeoutMs` (then its process
 *   group is killed)
 */
export async function runStartupScript(run: StartupScriptRun): Promise<Record<string, string>> {
  await mkdir(path.dirname(run.logFile), { recursive: true })
  // Each run has a private temporary folder (never the data dir) for the script and the
  // environment it leaves, which holds secrets; it is removed as soon as the run ends.
  const envDir = await mkdtemp(path.join(tmpdir(), 'airdock-startup-'))
  const envFile = path.join(envDir, 'env')
  const scriptFile = path.join(envDir, 'startup.sh')
  await writeFile(scriptFile, run.script, { mode: 0o700 })
  // The script is sourced by a shell that, only if it succeeds, dumps the environment it left
  // (NUL-separated) into a file: stdout stays the script's own output.
  const wrapper =
    '. "$1"; status=$?; [ "$status" -eq 0 ] && (umask 077; env -0 > "$2"); exit "$status"'
  let dump: string
  let result: { code: number | null; timedOut: boolean }
  try {
    result = await runCommand('bash', ['-c', wrapper, 'startup', scriptFile, envFile], {
      env: run.env,
      cwd: run.cwd,
      timeoutMs: run.timeoutMs,
      logFile: run.logFile,
    })
    dump = await readFile(envFile, 'utf8').catch(() => '')
  } finally {
    await rm(envDir, { recursive: true, force: true })
  }
  const { code, timedOut } = result
  if (timedOut) {
    throw new StartupScriptError(
      `The startup script did not finish within ${Math.round(run.timeoutMs / 1000)} s and was stopped.${await tail(run.logFile)}`,
      run.logFile,
    )
  }
  if (code !== 0) {
    throw new StartupScriptError(
      `The startup script exited with code ${code}.${await tail(run.logFile)}`,
      run.logFile,
    )
  }
  const after = parseEnvDump(dump)
  const exported: Record<string, string> = {}
  for (const [key, value] of Object.entries(after)) {
    if (RESERVED_STARTUP_VARIABLES.has(key) || run.env[key] === value) continue
    exported[key] = value
  }
  return exported
}

/** Parses `env -0` output. */
function parseEnvDump(dump: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of dump.split('\0')) {
    const eq = entry.indexOf('=')
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1)
  }
  return env
}

/** The last lines of a log, for an error message. */
async function tail(file: string): Promise<string> {
  const text = (await readFile(file, 'utf8').catch(() => '')).trim()
  if (!text) return ''
  return ` Last output: ${text.split('\n').slice(-5).join(' | ').slice(0, 600)}`
}
