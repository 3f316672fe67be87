/**
 * Prepares an environment's inputs from its bucket before anything runs with them (issue 5,
 * "validate before applying"): the `requirements.txt` layer, the extracted `plugins.zip`, the
 * startup script's exports — then imports the plugins and every DAG with them, side by side with
 * whatever is running. Only a successful preparation reaches the components; a failure is an
 * {@link ArtifactError} whose message names the package, plugin, script or DAG file.
 *
 * Results are cached per environment and inputs (runtime, the three paths and versions), so
 * an update that changes something else (MaxWorkers, options) costs nothing here.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { extractPluginsArchive, PluginsArchiveError } from '../airflow/plugins-archive.js'
import { ensureRequirementsLayer, RequirementsInstallError } from '../airflow/requirements-layer.js'
import type { Runtime } from '../airflow/runtime-manager.js'
import { runStartupScript, StartupScriptError } from '../airflow/startup-script.js'
import { mwaaComponentKinds, type EnvironmentLayout } from '../airflow/components.js'
import type { EnvironmentRecord } from '../domain/environment.js'
import { runCommand } from '../lib/run-command.js'
import type { Logger } from '../observability/logger.js'
import {
  BucketNotFoundError,
  ObjectNotFoundError,
  parseBucketArn,
  type ObjectStore,
} from '../storage/object-store.js'
import { unreadableVersionMessage } from '../storage/object-versions.js'

/** How long one import check (plugins, DAGs) may take, in ms. */
const IMPORT_CHECK_TIMEOUT_MS = 300_000

/** What the components get from the prepared inputs. */
export interface PreparedArtifacts {
  /** The requirements layer's packages folder (first on `PYTHONPATH`). */
  pythonPath?: string
  /** The extracted plugins folder (`[core] plugins_folder`). */
  pluginsDir?: string
  /** Variables the startup script exported, per MWAA component kind. */
  startupEnv: Record<string, Record<string, string>>
}

/** Why an environment's inputs cannot be used. */
export class ArtifactError extends Error {
  /** Every `code` this error has: a failure that left the running components untouched. */
  static readonly CODES: ReadonlySet<string> = new Set([
    'REQUIREMENTS_INSTALL_FAILED',
    'PLUGINS_INVALID',
    'PLUGIN_IMPORT_FAILED',
    'STARTUP_SCRIPT_FAILED',
    'DAG_IMPORT_FAILED',
    'ARTIFACT_NOT_FOUND',
  ])

  /**
   * @param code - `LastUpdate.Error.ErrorCode`: REQUIREMENTS_INSTALL_FAILED, PLUGINS_INVALID,
   *   PLUGIN_IMPORT_FAILED, STARTUP_SCRIPT_FAILED, DAG_IMPORT_FAILED, ARTIFACT_NOT_FOUND
   * @param message - names the package, plugin, script or DAG file, with the first lines of the
   *   error and where the full log is
   */
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** Why the latest update's inputs were refused (what observe keeps reporting). */
export interface InputsRefusal {
  code: string
  message: string
  /** The refused generation is the latest one: UPDATE_FAILED. */
  updateFailed: boolean
}

/**
 * `LastUpdate.Error.ErrorCode`s of an Airflow version change that ended with the old version
 * running: VERSION_CHANGE_FAILED (refused before anything was touched, e.g. the new runtime
 * could not be built) and VERSION_CHANGE_ROLLED_BACK (the snapshot was restored).
 */
const VERSION_CHANGE_CODES: ReadonlySet<string> = new Set([
  'VERSION_CHANGE_FAILED',
  'VERSION_CHANGE_ROLLED_BACK',
])

/**
 * The refusal of `record`'s latest update, when its inputs were refused or its version change
 * was refused or rolled back (then nothing of it runs: the components run `lastGoodSpec`).
 */
export function refusedUpdate(record: EnvironmentRecord): InputsRefusal | undefined {
  const { observation } = record
  if (
    observation.phase !== 'provisioned' ||
    observation.failedGeneration !== record.generation ||
    observation.observedGeneration >= record.generation ||
    !(
      ArtifactError.CODES.has(observation.failureCode ?? '') ||
      VERSION_CHANGE_CODES.has(observation.failureCode ?? '')
    )
  ) {
    return undefined
  }
  return {
    code: observation.failureCode!,
    message: observation.message ?? '',
    updateFailed: true,
  }
}

/** Preparations kept per environment: what runs, and what is being tried beside it. */
const CACHED_PREPARATIONS = 3

/** One cached preparation of an environment's inputs. */
interface CachedPreparation {
  /** The runtime and the inputs' paths and versions. */
  key: string
  generation: number
  result: PreparedArtifacts | ArtifactError
  /** The plugins and DAGs were imported with `result` (once per inputs is enough). */
  importsValidated: boolean
}

/** True when the spec names a requirements.txt, a plugins.zip or a startup script. */
function hasInputs(spec: EnvironmentRecord['spec']): boolean {
  return Boolean(spec.requirementsS3Path || spec.pluginsS3Path || spec.startupScriptS3Path)
}

/** What the preparer needs. */
export interface ArtifactPreparerOptions {
  objectStore: ObjectStore
  /** `$AIRDOCK_DATA_DIR/layers`. */
  layersDir: string
  /** The `uv` executable. */
  uv: string
  /** The installer's environment (host PATH, proxies, CA bundles). */
  installerEnv: Record<string, string>
  /** `requirements.txt` install limit, in ms. */
  requirementsTimeoutMs: number
  /** Startup script limit, in ms (MWAA: 5 minutes). */
  startupScriptTimeoutMs: number
  logger: Logger
}

/** One preparation request. */
export interface PrepareRequest {
  record: EnvironmentRecord
  runtime: Runtime
  layout: EnvironmentLayout
  /**
   * The Airflow environment of a kind's processes with these artifacts (including the startup
   * exports captured so far, in the components' precedence): what the startup script and the
   * import checks run in.
   */
  envFor: (kind: string, artifacts: PreparedArtifacts) => Record<string, string>
  /** Import every plugin and DAG with the new inputs (a create or an update not yet applied). */
  validateImports: boolean
  /** A trial (`airdock validate`): neither read from nor written to the cache. */
  trial?: boolean
}

/** Prepares and caches environments' inputs. */
export class ArtifactPreparer {
  /**
   * Per environment, the latest preparations, most recent first (at most
   * {@link CACHED_PREPARATIONS}): what runs stays cached beside a refused update or a version
   * change being prepared.
   */
  private readonly cache = new Map<string, CachedPreparation[]>()

  constructor(private readonly options: ArtifactPreparerOptions) {}

  /** Forgets an environment (deleted). */
  forget(environmentId: string): void {
    this.cache.delete(environmentId)
  }

  /**
   * @returns the prepared inputs (nothing set when the environment has none)
   * @throws ArtifactError when an input cannot be read, installed, run or imported
   */
  async prepare(request: PrepareRequest): Promise<PreparedArtifacts> {
    const { record, runtime } = request
    const { spec } = record
    const key = JSON.stringify([
      runtime.dir,
      spec.requirementsS3Path,
      spec.requirementsS3ObjectVersion,
      spec.pluginsS3Path,
      spec.pluginsS3ObjectVersion,
      spec.startupScriptS3Path,
      spec.startupScriptS3ObjectVersion,
      request.record.spec.environmentClass,
    ])
    const cached = request.trial ? undefined : this.cache.get(record.id)?.find((c) => c.key === key)
    // A refusal is remembered for its update only: the same inputs sent again (after fixing a
    // DAG, or a network that came back) are tried again.
    if (cached?.result instanceof ArtifactError && cached.generation === record.generation) {
      throw cached.result
    }
    const started = Date.now()
    try {
      if (cached && !(cached.result instanceof ArtifactError)) {
        // Prepared earlier without the import check (e.g. before a version change's
        // migration): only the check is left to do.
        if (request.validateImports && !cached.importsValidated) {
          await this.validateImports(request, cached.result)
          cached.importsValidated = true
        }
        return cached.result
      }
      const result = await this.prepareUncached(request)
      if (!request.trial) {
        this.remember(record.id, {
          key,
          generation: record.generation,
          result,
          importsValidated: request.validateImports,
        })
      }
      this.options.logger.info(
        { environment: record.name, seconds: (Date.now() - started) / 1000 },
        'environment inputs prepared',
      )
      return result
    } catch (err) {
      if (err instanceof ArtifactError) {
        if (!request.trial) {
          this.remember(record.id, {
            key,
            generation: record.generation,
            result: err,
            importsValidated: false,
          })
        }
        this.options.logger.warn(
          { environment: record.name, code: err.code, seconds: (Date.now() - started) / 1000 },
          'environment inputs refused',
        )
      }
      throw err
    }
  }

  private remember(environmentId: string, entry: CachedPreparation): void {
    const others = (this.cache.get(environmentId) ?? []).filter((c) => c.key !== entry.key)
    this.cache.set(environmentId, [entry, ...others].slice(0, CACHED_PREPARATIONS))
  }

  private async prepareUncached(request: PrepareRequest): Promise<PreparedArtifacts> {
    const { record, runtime, layout } = request
    const { spec } = record
    const artifacts: PreparedArtifacts = { startupEnv: {} }
    if (!hasInputs(spec)) return artifacts
    const logsDir = path.join(layout.logsDir, 'inputs')
    if (spec.requirementsS3Path) {
      const text = (
        await this.read(record, spec.requirementsS3Path, spec.requirementsS3ObjectVersion)
      ).toString('utf8')
      try {
        const layer = await ensureRequirementsLayer({
          runtime,
          requirements: text,
          layersDir: this.options.layersDir,
          uv: this.options.uv,
          env: this.options.installerEnv,
          timeoutMs: this.options.requirementsTimeoutMs,
          logFile: path.join(logsDir, 'requirements-install.log'),
        })
        artifacts.pythonPath = layer.sitePackages
      } catch (err) {
        if (err instanceof RequirementsInstallError) {
          throw new ArtifactError(
            'REQUIREMENTS_INSTALL_FAILED',
            `${err.message} (full log: ${err.logFile})`,
          )
        }
        throw err
      }
    }
    if (spec.pluginsS3Path) {
      const zip = await this.read(record, spec.pluginsS3Path, spec.pluginsS3ObjectVersion)
      const digest = createHash('sha256').update(zip).digest('hex').slice(0, 16)
      const dir = path.join(layout.homeDir, `plugins-${digest}`)
      if (!existsSync(dir)) {
        try {
          await extractPluginsArchive(zip, dir)
        } catch (err) {
          if (err instanceof PluginsArchiveError) {
            throw new ArtifactError('PLUGINS_INVALID', err.message)
          }
          throw err
        }
      }
      artifacts.pluginsDir = dir
    }
    if (spec.startupScriptS3Path) {
      const script = (
        await this.read(record, spec.startupScriptS3Path, spec.startupScriptS3ObjectVersion)
      ).toString('utf8')
      for (const kind of mwaaComponentKinds(spec)) {
        try {
          artifacts.startupEnv[kind] = await runStartupScript({
            script,
            env: { ...request.envFor(kind, artifacts), MWAA_AIRFLOW_COMPONENT: kind },
            cwd: layout.homeDir,
            timeoutMs: this.options.startupScriptTimeoutMs,
            logFile: path.join(layout.logsDir, 'startup-script', `${kind}.log`),
          })
        } catch (err) {
          if (err instanceof StartupScriptError) {
            throw new ArtifactError(
              'STARTUP_SCRIPT_FAILED',
              `${err.message} (MWAA_AIRFLOW_COMPONENT=${kind}; full log: ${err.logFile})`,
            )
          }
          throw err
        }
      }
    }
    if (request.validateImports) await this.validateImports(request, artifacts)
    return artifacts
  }

  /**
   * Loads the plugins and parses every DAG with the new inputs. A DAG is blamed only when it
   * imports today (no import error recorded by the running dag-processor) and fails with them.
   */
  private async validateImports(
    request: PrepareRequest,
    artifacts: PreparedArtifacts,
  ): Promise<void> {
    // Without inputs there is nothing new to import with (creates stay fast).
    if (!hasInputs(request.record.spec)) return
    const kind = 'scheduler'
    const env = { ...request.envFor(kind, artifacts), MWAA_AIRFLOW_COMPONENT: kind }
    const python = request.runtime.python
    const run = async (command: string, args: string[]) => {
      const r = await runCommand(command, args, {
        env,
        cwd: request.layout.homeDir,
        timeoutMs: IMPORT_CHECK_TIMEOUT_MS,
      })
      return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') }
    }
    const plugins = await run(python, [
      '-c',
      'import json; from airflow import plugins_manager as p; print("AIRDOCK-PLUGIN-ERRORS " + json.dumps(p.get_import_errors()))',
    ])
    const pluginErrors = parseTagged<Record<string, string>>(
      plugins.stdout,
      'AIRDOCK-PLUGIN-ERRORS',
    )
    if (plugins.code !== 0 || !pluginErrors) {
      throw new ArtifactError(
        'PLUGIN_IMPORT_FAILED',
        `Airflow could not start with these inputs: ${lastLines(plugins.stderr || plugins.stdout)}`,
      )
    }
    const failedPlugins = Object.entries(pluginErrors)
    if (failedPlugins.length > 0) {
      const [file, error] = failedPlugins[0]!
      throw new ArtifactError(
        'PLUGIN_IMPORT_FAILED',
        `Plugin ${path.relative(artifacts.pluginsDir ?? '', file) || file} failed to import: ${firstLines(error)}`,
      )
    }
    const dags = await run(request.runtime.airflow, [
      'dags',
      'list-import-errors',
      '--local',
      '-o',
      'json',
    ])
    const now = parseImportErrors(dags.stdout)
    if (now === undefined) {
      throw new ArtifactError(
        'DAG_IMPORT_FAILED',
        `The DAGs could not be parsed with these inputs: ${lastLines(dags.stderr || dags.stdout)}`,
      )
    }
    if (now.length === 0) return
    // Only DAGs that import today are blamed: the running dag-processor's errors, from the
    // database, hold paths relative to the DAG bundle; a local parse gives absolute ones.
    const running = await run(request.runtime.airflow, ['dags', 'list-import-errors', '-o', 'json'])
    const dagsDir = request.layout.dagsDir
    const before = new Set(
      (parseImportErrors(running.stdout) ?? []).map((e) => path.resolve(dagsDir, e.filepath)),
    )
    const fresh = now.filter((e) => !before.has(path.resolve(dagsDir, e.filepath)))
    if (fresh.length > 0) {
      const first = fresh[0]!
      throw new ArtifactError(
        'DAG_IMPORT_FAILED',
        `DAG file ${path.relative(dagsDir, first.filepath) || first.filepath} does not import with these inputs${fresh.length > 1 ? ` (and ${fresh.length - 1} more)` : ''}: ${firstLines(first.error)} (its full traceback: \`airflow dags list-import-errors --local\` in the environment, or the Airflow UI once applied)`,
      )
    }
  }

  /**
   * Reads an input from the environment's bucket.
   * @throws ArtifactError ARTIFACT_NOT_FOUND when the bucket, the file or that version of it is
   *   missing; the message follows MWAA's `Unable to read version {version} of file {file}` and
   *   names the version that exists now (a folder bucket's: the file's SHA-256)
   */
  private async read(record: EnvironmentRecord, key: string, version?: string): Promise<Buffer> {
    const bucket = parseBucketArn(record.spec.sourceBucketArn)
    const { objectStore } = this.options
    try {
      return await objectStore.get(bucket, key, version)
    } catch (err) {
      if (err instanceof BucketNotFoundError) {
        throw new ArtifactError(
          'ARTIFACT_NOT_FOUND',
          `Unable to read ${version === undefined ? '' : `version ${version} of `}file ${key}: bucket ${bucket} does not exist.`,
        )
      }
      if (err instanceof ObjectNotFoundError) {
        const message = await unreadableVersionMessage(objectStore, bucket, key, version)
        throw new ArtifactError('ARTIFACT_NOT_FOUND', message)
      }
      throw err
    }
  }
}

interface ImportError {
  filepath: string
  error: string
}

/**
 * `airflow dags list-import-errors -o json` output: the JSON array on the first line that
 * starts one (Airflow prints warnings before it on stdout).
 * @returns the errors, or undefined when no JSON array is found
 */
export function parseImportErrors(stdout: string): ImportError[] | undefined {
  const lines = stdout.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.trimStart().startsWith('[')) continue
    try {
      return (JSON.parse(lines.slice(i).join('\n')) as ImportError[]).filter((e) => e.filepath)
    } catch {
      // A warning that happens to start with '[': keep looking.
    }
  }
  return stdout.includes('No data found') ? [] : undefined
}

function parseTagged<T>(stdout: string, tag: string): T | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(`${tag} `))
  if (!line) return undefined
  try {
    return JSON.parse(line.slice(tag.length + 1)) as T
  } catch {
    return undefined
  }
}

/** The last line of a Python traceback is the useful one; the first says where. */
function firstLines(error: string): string {
  const lines = error.trim().split('\n').filter(Boolean)
  const last = lines[lines.length - 1] ?? ''
  return (lines.length > 1 ? `${last} (${lines[0]!.trim()})` : last).slice(0, 600)
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ').slice(0, 600)
}
