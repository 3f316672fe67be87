/**
 * An environment's `requirements.txt` layer (issue 5, DESIGN.md decision 5): the packages are
 * installed with `uv pip install --target` into a folder of their own on top of the Airflow
 * runtime, always constrained by the runtime's committed lock (`name==version` of every package
 * Airflow was built with), so a line can never move one of Airflow's pins. Every component gets
 * the layer first on `PYTHONPATH`.
 *
 * Layers are content-addressed: `<layersDir>/<runtime key>-<sha256(requirements)[0:16]>/` (the
 * runtime key names the lock's hash), complete only when its marker exists, shared by every environment with the same
 * requirements and runtime (the second one takes no time), and `uv`'s download cache is shared
 * too. MWAA's rules (reference §9): pip install on every component, constraints added when the
 * file has none, about 10 minutes at most.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { runCommand } from '../lib/run-command.js'
import type { Runtime } from './runtime-manager.js'

/** A ready layer. */
export interface RequirementsLayer {
  /** The layer folder. */
  dir: string
  /** Its packages folder: first on every component's `PYTHONPATH`. */
  sitePackages: string
}

/** Why a `requirements.txt` could not be installed; `message` names the package. */
export class RequirementsInstallError extends Error {
  /**
   * @param message - the first useful lines (the package and the reason)
   * @param logFile - the installer's full output
   */
  constructor(
    message: string,
    readonly logFile: string,
  ) {
    super(message)
  }
}

/** What {@link ensureRequirementsLayer} needs. */
export interface RequirementsLayerOptions {
  runtime: Runtime
  /** The contents of `requirements.txt`. */
  requirements: string
  /** Where layers live (`$AIRDOCK_DATA_DIR/layers`). */
  layersDir: string
  /** The `uv` executable. */
  uv: string
  /** Environment for the installer (PATH, proxy and CA settings). */
  env: Record<string, string>
  /** Installer time limit, in ms (MWAA: about 10 minutes). */
  timeoutMs: number
  /** Where the installer's output goes (kept for the user). */
  logFile: string
}

const MARKER = '.airdock-layer.json'

/** Options a requirements.txt may use (the others can read files of the host). */
const ALLOWED_OPTIONS = new Set([
  '-i',
  '--index-url',
  '--extra-index-url',
  '--trusted-host',
  '--pre',
  '--prefer-binary',
  '--only-binary',
  '--no-binary',
])
const URL_OPTIONS = new Set(['-i', '--index-url', '--extra-index-url'])

/**
 * Checks a requirements.txt before the installer sees it: requirement specifiers (with extras,
 * markers, or `name @ https://…`), comments and index options only. Nested requirement or
 * constraint files (`-r`, `-c`), editable or local paths (`-e`, `./pkg`, `/x.whl`, `file:`) and
 * `--find-links` are refused: they would read the control plane's own files (the installer's
 * error would then quote them). Constraints are airdock's own (the runtime lock).
 * @throws RequirementsInstallError naming the line
 */
export function checkRequirements(text: string, logFile: string): void {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)
  lines.forEach((raw, index) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim()
    if (line === '') return
    const refuse = (why: string): never => {
      throw new RequirementsInstallError(
        `requirements.txt line ${index + 1} (${line.slice(0, 120)}): ${why}`,
        logFile,
      )
    }
    if (line.startsWith('-')) {
      const [option = '', ...rest] = line.split(/[\s=]+/)
      if (!ALLOWED_OPTIONS.has(option)) {
        refuse(
          `the option ${option} is not allowed (nested files, local paths and find-links are refused; airdock adds the runtime's constraints itself)`,
        )
      }
      if (URL_OPTIONS.has(option) && !/^https?:\/\//.test(rest[0] ?? '')) {
        refuse(`${option} must be an http(s) URL`)
      }
      return
    }
    if (/^[./~\\]/.test(line) || /file:/i.test(line)) refuse('local paths are not allowed')
    const url = /@\s*(\S+)/.exec(line)?.[1]
    if (url && !/^https?:\/\//.test(url)) refuse('a direct reference must be an http(s) URL')
  })
}

/**
 * The `name==version` constraints of a runtime lock (hash and comment lines dropped).
 * @param lock - the text of `requirements.lock`
 */
export function constraintsFromLock(lock: string): string {
  return (
    lock
      .split('\n')
      .map((line) => /^([A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?==[^\s\\;]+)/.exec(line)?.[1])
      .filter((line): line is string => line !== undefined)
      .join('\n') + '\n'
  )
}

/**
 * The layer folder for these inputs (built or not): `<runtime key>-<first 16 hex of the
 * requirements' SHA-256>`. The runtime key already names its lock, so a patched lock gets a new
 * layer.
 * @returns the folder and whether it is complete
 */
function requirementsLayerFor(
  options: Pick<RequirementsLayerOptions, 'runtime' | 'requirements' | 'layersDir'>,
): RequirementsLayer & { ready: boolean } {
  const key = createHash('sha256').update(options.requirements).digest('hex').slice(0, 16)
  const dir = path.join(options.layersDir, `${options.runtime.key}-${key}`)
  return {
    dir,
    sitePackages: path.join(dir, 'site-packages'),
    ready: existsSync(path.join(dir, MARKER)),
  }
}

/**
 * Installs `requirements.txt` into its layer unless it is there already.
 * @throws RequirementsInstallError naming the failing package (an unknown package, a version
 *   that conflicts with Airflow's pin, a build failure) with the first useful lines of `uv`'s
 *   output; the full output is in `options.logFile`
 */
export async function ensureRequirementsLayer(
  options: RequirementsLayerOptions,
): Promise<RequirementsLayer> {
  checkRequirements(options.requirements, options.logFile)
  const layer = requirementsLayerFor(options)
  if (layer.ready) return { dir: layer.dir, sitePackages: layer.sitePackages }
  const work = `${layer.dir}.building-${process.pid}-${Date.now()}`
  await rm(work, { recursive: true, force: true })
  await mkdir(work, { recursive: true })
  try {
    const lock = await readFile(options.runtime.lockFile, 'utf8')
    await writeFile(path.join(work, 'requirements.txt'), options.requirements)
    await writeFile(path.join(work, 'constraints.txt'), constraintsFromLock(lock))
    const started = Date.now()
    const result = await runCommand(
      options.uv,
      [
        'pip',
        'install',
        '--python',
        options.runtime.python,
        '--target',
        path.join(work, 'site-packages'),
        '--requirement',
        path.join(work, 'requirements.txt'),
        '--constraint',
        path.join(work, 'constraints.txt'),
        '--no-progress',
      ],
      { env: options.env, timeoutMs: options.timeoutMs },
    )
    const code = result.code
    const output = Buffer.concat([result.stdout, result.stderr]).toString('utf8')
    await mkdir(path.dirname(options.logFile), { recursive: true })
    await writeFile(options.logFile, output)
    if (code !== 0) {
      throw new RequirementsInstallError(
        describeFailure(output, code, options.timeoutMs),
        options.logFile,
      )
    }
    await writeFile(
      path.join(work, MARKER),
      JSON.stringify({
        installedAt: new Date().toISOString(),
        seconds: (Date.now() - started) / 1000,
      }),
    )
    // Another preparation may have finished the same layer meanwhile (and may use it): keep it.
    if (!existsSync(path.join(layer.dir, MARKER))) {
      await rm(layer.dir, { recursive: true, force: true })
      await rename(work, layer.dir)
    }
    return { dir: layer.dir, sitePackages: layer.sitePackages }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * The useful part of `uv`'s failure: its `error:`/`cause:`/`hint:` lines, rephrased when a line
 * conflicts with Airflow's pins.
 */
export function describeFailure(output: string, code: number | null, timeoutMs: number): string {
  if (code === null) {
    return `requirements.txt did not install within ${Math.round(timeoutMs / 1000)} s.`
  }
  const lines = output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(error|cause|hint|×|╰─▶|help):?/i.test(l) || /because/i.test(l))
  const text = (lines.length > 0 ? lines : output.trim().split('\n').slice(-5)).join(' ')
  const conflict = /you require ([A-Za-z0-9._-]+)(\S*) and \1(==\S+?)(,|\s|$)/.exec(text)
  if (conflict) {
    const [, name, wanted, pinned] = conflict
    return `requirements.txt asks for ${name}${wanted}, which conflicts with ${name}${pinned} that the Airflow runtime pins. ${text}`.slice(
      0,
      1000,
    )
  }
  return `requirements.txt could not be installed: ${text}`.slice(0, 1000)
}
