/**
 * Airflow runtimes: one Python virtual environment per Airflow version, built with `uv` from the
 * lock file committed at `runtimes/<version>/requirements.lock` (our constraints file, made with
 * `uv pip compile --generate-hashes`), built once and shared by every environment
 * (DESIGN.md decision 5).
 *
 * A runtime lives in `<runtimeDir>/<version>-<first 12 hex of the lock's SHA-256>/` (its key)
 * and is complete only when its marker `.airdock-runtime.json` exists and names the lock's
 * SHA-256; anything else is wiped and rebuilt. A copy of the lock is kept inside, so a runtime
 * built from an older lock of the same version (one that environments still run until their
 * maintenance window) can be found by its key. A lock folder (`<version>.building`) keeps two
 * control planes from building the same runtime at once.
 *
 * Every build writes the installer's whole output (each step's command line, then its lines) to
 * `<runtimeDir>/<key>.build.log` ({@link RuntimeManager.buildLogFile}), beside the runtime so a
 * rebuild keeps it until it starts; build failures name that file, and the control plane's own
 * log gets one line per build (the lines themselves at debug level).
 */
import { createHash } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs'
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { isSupportedAirflowVersion } from '../domain/airflow-versions.js'
import { TerminalError } from '../domain/errors.js'
import { runCommand, type CommandResult } from '../lib/run-command.js'
import type { Logger } from '../observability/logger.js'

/** Root of the committed lock files: `runtimes/<version>/requirements.lock`. */
export const LOCKS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../runtimes',
)

/** How long one step of a runtime build (`uv venv`, `uv pip sync`, the check) may run, in ms. */
const RUNTIME_STEP_TIMEOUT_MS = 30 * 60_000

/** The copy of its lock inside every runtime's folder. */
const KEPT_LOCK = 'requirements.lock'

/** A built runtime. Paths are absolute. */
export interface Runtime {
  airflowVersion: string
  /** `<version>-<first 12 hex of the lock's SHA-256>`: the folder's name. */
  key: string
  /** The virtual environment's folder. */
  dir: string
  /** `<dir>/bin`, put first on every component's PATH. */
  binDir: string
  /** `<dir>/bin/airflow`. */
  airflow: string
  /** `<dir>/bin/python`. */
  python: string
  /** The lock file it was built from (also the constraints for user requirements). */
  lockFile: string
}

/** Thrown when a runtime cannot be built; the message carries the installer's last lines. */
export class RuntimeBuildError extends TerminalError {}

/** Options of the runtime manager. */
export interface RuntimeManagerOptions {
  /** Where runtimes are built: `<runtimeDir>/<version>/`. */
  runtimeDir: string
  /** Python to build with: a path, or a version such as `3.12` that is looked up. */
  python: string
  /** The `uv` executable. */
  uv: string
  /** The host PATH, for finding `uv` and Python. */
  hostPath: string
  /** The host environment (proxy and CA settings the installer needs). */
  hostEnv: Record<string, string>
  logger: Logger
  /** Overrides the folder holding `<version>/requirements.lock` (tests). */
  locksDir?: string
}

/** Progress of a build, one line of the installer's output at a time. */
export type ProgressListener = (line: string) => void

interface Marker {
  airflowVersion: string
  lockSha256: string
  builtAt: string
  buildSeconds: number
}

/** Builds and finds runtimes. */
export class RuntimeManager {
  private readonly inFlight = new Map<string, Promise<Runtime>>()
  private readonly lockHashes = new Map<string, string>()

  constructor(private readonly options: RuntimeManagerOptions) {}

  /** The lock file for a version. */
  lockFile(version: string): string {
    return path.join(this.options.locksDir ?? LOCKS_DIR, version, 'requirements.lock')
  }

  /**
   * The runtime's paths, whether or not it is built. The folder is named after the version and
   * the lock's hash (`3.3.2-<12 hex>`), so a changed lock builds a new runtime beside the one
   * running environments still use, and their components move over on their next reconcile.
   * @throws Error when the version has no lock file
   */
  describe(version: string): Runtime {
    const lockFile = this.lockFile(version)
    const lockHash = this.lockSha256(version)
    return this.runtimeAt(version, `${version}-${lockHash.slice(0, 12)}`, lockFile)
  }

  /**
   * The build log of `version`'s runtime: `<runtimeDir>/<key>.build.log`, the installer's whole
   * output of the latest build of that runtime (rewritten by each build).
   * @throws Error when the version has no lock file
   */
  buildLogFile(version: string): string {
    return path.join(this.options.runtimeDir, `${this.describe(version).key}.build.log`)
  }

  /**
   * The last `count` lines of `version`'s build log (for a failure report).
   * @returns [] when there is no build log
   */
  async buildLogTail(version: string, count: number): Promise<string[]> {
    const text = await readFile(this.buildLogFile(version), 'utf8').catch(() => '')
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-count)
  }

  /** The paths of runtime `key` (of Airflow `version`, built from `lockFile`). */
  private runtimeAt(version: string, key: string, lockFile: string): Runtime {
    const dir = path.join(this.options.runtimeDir, key)
    const binDir = path.join(dir, 'bin')
    return {
      airflowVersion: version,
      key,
      dir,
      binDir,
      airflow: path.join(binDir, 'airflow'),
      python: path.join(binDir, 'python'),
      lockFile,
    }
  }

  /**
   * The SHA-256 of a version's lock file, read once per control-plane run (the reconciler
   * asks on every pass; a changed lock takes effect on the next start).
   */
  private lockSha256(version: string): string {
    let hash = this.lockHashes.get(version)
    if (!hash) {
      hash = createHash('sha256')
        .update(readFileSync(this.lockFile(version)))
        .digest('hex')
      this.lockHashes.set(version, hash)
    }
    return hash
  }

  /** @returns the runtime when it is built from the current lock, else undefined */
  async find(version: string): Promise<Runtime | undefined> {
    if (!existsSync(this.lockFile(version))) return undefined
    const runtime = this.describe(version)
    const marker = await readMarker(runtime.dir)
    if (marker?.lockSha256 !== this.lockSha256(version)) return undefined
    // Runtimes built before locks were kept inside get their copy now.
    const kept = path.join(runtime.dir, KEPT_LOCK)
    if (!existsSync(kept)) await copyFile(runtime.lockFile, kept)
    return runtime
  }

  /**
   * A built runtime by its key, whether or not its lock is still the current one (an older lock
   * of the same version: what environments run until their maintenance window).
   * @returns undefined when it is not built (or was built before locks were kept inside)
   */
  async findByKey(key: string): Promise<Runtime | undefined> {
    const match = /^(\d+(?:\.\d+)*)-[0-9a-f]{12}$/.exec(key)
    if (!match) return undefined
    const dir = path.join(this.options.runtimeDir, key)
    const marker = await readMarker(dir)
    const lockFile = path.join(dir, KEPT_LOCK)
    if (!marker || marker.airflowVersion !== match[1] || !existsSync(lockFile)) return undefined
    return this.runtimeAt(marker.airflowVersion, key, lockFile)
  }

  /**
   * Returns the runtime for `version`, building it first if needed. Concurrent callers share
   * one build.
   * @param onProgress - receives the installer's output lines while building
   * @throws RuntimeBuildError when the version has no lock or the installer fails
   */
  async ensure(version: string, onProgress?: ProgressListener): Promise<Runtime> {
    const existing = this.inFlight.get(version)
    if (existing) return existing
    const build = this.buildIfNeeded(version, onProgress).finally(() =>
      this.inFlight.delete(version),
    )
    this.inFlight.set(version, build)
    return build
  }

  private async buildIfNeeded(version: string, onProgress?: ProgressListener): Promise<Runtime> {
    if (!isSupportedAirflowVersion(version) || !existsSync(this.lockFile(version))) {
      throw new RuntimeBuildError(`no lock file for Airflow ${version}`)
    }
    const found = await this.find(version)
    if (found) return found
    const runtime = this.describe(version)
    const lockDir = `${runtime.dir}.building`
    await mkdir(this.options.runtimeDir, { recursive: true })
    await acquireDirLock(lockDir)
    try {
      const again = await this.find(version)
      if (again) return again
      await this.build(runtime, onProgress)
      return runtime
    } finally {
      await rm(lockDir, { recursive: true, force: true })
    }
  }

  /**
   * Builds `runtime`, its installer output written to its build log.
   * @throws RuntimeBuildError naming the build log
   */
  private async build(runtime: Runtime, onProgress?: ProgressListener): Promise<void> {
    const logFile = this.buildLogFile(runtime.airflowVersion)
    const fd = openSync(logFile, 'w')
    const write = (line: string): void => void writeSync(fd, `${line}\n`)
    write(
      `# Airflow ${runtime.airflowVersion} runtime ${runtime.key}, built ${new Date().toISOString()}`,
    )
    try {
      await this.buildSteps(runtime, logFile, (line) => {
        write(line)
        onProgress?.(line)
      })
    } catch (err) {
      write(`# failed: ${(err as Error).message}`)
      if (err instanceof RuntimeBuildError) {
        throw new RuntimeBuildError(`${err.message} (build log: ${logFile})`)
      }
      throw err
    } finally {
      closeSync(fd)
    }
  }

  private async buildSteps(
    runtime: Runtime,
    logFile: string,
    toLog: (line: string) => void,
  ): Promise<void> {
    const log = this.options.logger.child({ airflowVersion: runtime.airflowVersion })
    const startedAt = Date.now()
    const python = await resolvePython(this.options.python)
    log.info({ python, dir: runtime.dir, logFile }, 'runtime build started')
    await rm(runtime.dir, { recursive: true, force: true })
    const progress = (line: string): void => {
      toLog(line)
      log.debug({ line }, 'runtime build progress')
    }
    /** Runs one step, its command line written to the build log first. */
    const step = (command: string, args: string[], env: Record<string, string>) => {
      toLog(`$ ${[command, ...args].join(' ')}`)
      return run(command, args, env, progress)
    }
    const env = {
      ...this.options.hostEnv,
      PATH: this.options.hostPath,
      UV_PYTHON_DOWNLOADS: 'never',
      NO_COLOR: '1',
    }
    await step(this.options.uv, ['venv', '--python', python, runtime.dir], env)
    await step(
      this.options.uv,
      ['pip', 'sync', '--python', runtime.python, '--require-hashes', runtime.lockFile],
      env,
    )
    const lines: string[] = []
    toLog(`$ ${runtime.airflow} version`)
    await run(
      runtime.airflow,
      ['version'],
      { ...env, AIRFLOW_HOME: path.join(runtime.dir, '.probe-home') },
      (l) => {
        lines.push(l)
        toLog(l)
      },
    )
    await rm(path.join(runtime.dir, '.probe-home'), { recursive: true, force: true })
    if (!lines.some((l) => l.trim() === runtime.airflowVersion)) {
      throw new RuntimeBuildError(
        `runtime check failed: airflow version printed ${JSON.stringify(lines.slice(-3))}`,
      )
    }
    await copyFile(runtime.lockFile, path.join(runtime.dir, KEPT_LOCK))
    const marker: Marker = {
      airflowVersion: runtime.airflowVersion,
      lockSha256: this.lockSha256(runtime.airflowVersion),
      builtAt: new Date().toISOString(),
      buildSeconds: (Date.now() - startedAt) / 1000,
    }
    await writeFile(
      path.join(runtime.dir, '.airdock-runtime.json'),
      JSON.stringify(marker, null, 2),
    )
    log.info({ buildSeconds: marker.buildSeconds, logFile }, 'runtime built')
  }
}

async function readMarker(dir: string): Promise<Marker | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, '.airdock-runtime.json'), 'utf8')) as Marker
  } catch {
    // No marker (or an unreadable one) means "not built".
    return undefined
  }
}

/**
 * Finds a Python interpreter for `wanted`: a path is used as is; a version such as `3.12` is
 * looked up in pyenv's versions and the usual system folders.
 * @throws RuntimeBuildError when none is found
 */
export async function resolvePython(wanted: string): Promise<string> {
  if (wanted.includes('/')) return wanted
  const candidates: string[] = []
  const pyenvVersions = path.join(homedir(), '.pyenv', 'versions')
  try {
    const versions = (await readdir(pyenvVersions))
      .filter((v) => v === wanted || v.startsWith(`${wanted}.`))
      .sort()
      .reverse()
    candidates.push(...versions.map((v) => path.join(pyenvVersions, v, 'bin', `python${wanted}`)))
  } catch {
    // No pyenv on this machine; fall through to system locations.
  }
  candidates.push(`/usr/local/bin/python${wanted}`, `/usr/bin/python${wanted}`)
  const found = candidates.find((c) => existsSync(c))
  if (!found) {
    throw new RuntimeBuildError(
      `Python ${wanted} was not found (looked in ${candidates.join(', ')})`,
    )
  }
  return found
}

async function acquireDirLock(lockDir: string): Promise<void> {
  for (;;) {
    try {
      await mkdir(lockDir)
      await writeFile(path.join(lockDir, 'pid'), String(process.pid))
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number(await readFile(path.join(lockDir, 'pid'), 'utf8').catch(() => '0'))
    if (!pid || !isAlive(pid)) {
      await rm(lockDir, { recursive: true, force: true })
      continue
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    // ESRCH: no such process.
    return false
  }
}

/**
 * Runs an installer step (no shell, its own process group, killed after
 * {@link RUNTIME_STEP_TIMEOUT_MS}), streaming its output lines.
 * @throws RuntimeBuildError with its last lines when it fails, cannot start or runs too long
 */
async function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  onLine: (line: string) => void,
): Promise<void> {
  const tail: string[] = []
  let result: CommandResult
  try {
    result = await runCommand(command, args, {
      env,
      timeoutMs: RUNTIME_STEP_TIMEOUT_MS,
      maxOutputBytes: 0,
      onLine: (line) => {
        tail.push(line)
        if (tail.length > 20) tail.shift()
        onLine(line)
      },
    })
  } catch (err) {
    throw new RuntimeBuildError(
      `${path.basename(command)} could not start: ${(err as Error).message}`,
    )
  }
  if (result.code !== 0) {
    const how = result.timedOut
      ? `ran past ${RUNTIME_STEP_TIMEOUT_MS / 60_000} minutes`
      : `failed (exit ${result.code})`
    throw new RuntimeBuildError(
      `${path.basename(command)} ${args[0] ?? ''} ${how}: ${tail.slice(-8).join(' | ')}`,
    )
  }
}
