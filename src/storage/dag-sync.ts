/**
 * DAG sync: mirrors every object under a bucket prefix (an environment's `DagS3Path`) into a
 * local folder that Airflow reads, like MWAA's periodic S3 → `/usr/local/airflow/dags` sync
 * (reference §9: hierarchy preserved, any file type, deletions synced) — but every second
 * instead of every ~30 s. A bucket or DAG folder that goes missing is a "source problem": logged
 * when it starts and ends, written to the sync's event log, and readable with `sourceProblem()`.
 */
import { randomBytes } from 'node:crypto'
import {
  appendFile,
  lstat,
  mkdir,
  readFile,
  realpath,
  rename,
  rm,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { basename, dirname, join, resolve, sep } from 'node:path'
import type { Logger } from 'pino'
import { makeFoldersInside, removeEmptyFolders, replaceFileAtomically } from './fs-object-store.js'
import {
  BucketNotFoundError,
  ObjectNotFoundError,
  normalizePrefix,
  unsafePathReason,
} from './object-store.js'
import type { ObjectInfo, ObjectStore } from './object-store.js'

/** The logger methods DagSync uses (a pino `Logger` fits). */
export type DagSyncLogger = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>

/** The part of the object store DagSync reads. */
export type DagSyncStore = Pick<ObjectStore, 'list' | 'get' | 'prefixExists'>

/**
 * Why the DAG source cannot be mirrored as it should:
 * - `BUCKET_NOT_FOUND`: the bucket does not exist; nothing is synced and the DAG files synced
 *   before stay in place;
 * - `DAG_FOLDER_NOT_FOUND`: the prefix is not there (a folder bucket's folder is missing; on S3,
 *   no key starts with it); the dags folder is mirrored empty, as S3 sync would.
 */
export interface DagSourceProblem {
  code: 'BUCKET_NOT_FOUND' | 'DAG_FOLDER_NOT_FOUND'
  /** A sentence naming the bucket (and the prefix). */
  message: string
  /** When the sync first saw it (this problem, without a good pass since). */
  since: Date
}

/** Options of `DagSync`. */
export interface DagSyncOptions {
  /** Where the objects come from. */
  store: DagSyncStore
  /** Bucket name (not ARN). */
  bucket: string
  /** Key prefix to mirror, treated as a folder (`dags` = `dags/`); `''` mirrors the bucket. */
  prefix: string
  /** Local folder to mirror into (created when missing); Airflow's DAGs folder. */
  targetDir: string
  /** Receives warnings (refused keys), errors (failed passes) and a line per applied change set. */
  logger: DagSyncLogger
  /** Pause between the end of one periodic pass and the start of the next, in ms; default 1000. */
  intervalMs?: number
  /** Manifest path; default `${targetDir}/../.dag-sync-manifest.json`. */
  manifestFile?: string
  /**
   * Folder for files being written, outside `targetDir` so Airflow never sees a partial file;
   * owned by this sync (emptied on its first pass). Should be on `targetDir`'s file system.
   * Default: `.${basename(targetDir)}.airdock-sync-tmp` beside `targetDir`.
   */
  tmpDir?: string
  /**
   * A file (in the environment's logs) that gets one line per source problem, recovery and
   * applied change set: `<ISO time> <message>`. Its folder is created when missing.
   */
  eventLogFile?: string
}

/** What one pass did. All entries are object keys, in key order. */
export interface DagSyncResult {
  /** Keys written (new, changed, or restored after a local edit or deletion). */
  written: string[]
  /** Keys whose local file was removed because the object is gone from the bucket. */
  deleted: string[]
  /** Keys never written because their path would escape (or alias inside) the target folder. */
  refused: string[]
  /** Keys that could not be written locally this pass (e.g. a folder is in the way); retried. */
  failed: string[]
}

/** Where an object key lands in the target folder. */
export type KeyPlacement =
  /** A file at `relativePath` (`/`-separated, relative to the target folder). */
  | { kind: 'file'; relativePath: string }
  /** A key ending in `/` (an S3 console "folder" object): nothing to write. */
  | { kind: 'folder' }
  /** The key must not be written; `reason` says why. */
  | { kind: 'refused'; reason: string }

/**
 * Maps an object key under `prefix` to its place in the target folder. Keys whose relative part
 * has `..` or `.` segments, empty segments, a leading `/`, a backslash or NUL are refused: S3
 * allows them, but they would escape or alias paths in the target folder.
 */
export function placeObjectKey(prefix: string, key: string): KeyPlacement {
  const folder = normalizePrefix(prefix)
  if (!key.startsWith(folder)) return { kind: 'refused', reason: `not under prefix ${folder}` }
  const relativePath = key.slice(folder.length)
  if (relativePath === '' || relativePath.endsWith('/')) return { kind: 'folder' }
  const reason = unsafePathReason(relativePath)
  return reason === undefined ? { kind: 'file', relativePath } : { kind: 'refused', reason }
}

/** One file the sync wrote, as remembered in the manifest (keyed by relative path). */
interface ManifestEntry {
  bucket: string
  key: string
  version: string
  /** Stat signature recorded right after writing; a mismatch means someone touched the file. */
  sizeBytes: number
  mtimeMs: number
  ino: number
}

interface ManifestFile {
  formatVersion: 1
  targetDir: string
  files: Record<string, ManifestEntry>
}

/**
 * Mirrors a bucket prefix into a local folder. Each pass lists the prefix once, then: deletes
 * local files whose object is gone (and folders that became empty), and writes new or changed
 * objects — or ones whose local copy was deleted or edited by hand (detected by size, mtime and
 * inode recorded after writing) — atomically through a temporary folder outside `targetDir`.
 * Only files the sync wrote are ever deleted; anything else in `targetDir` (e.g. `__pycache__`)
 * is left alone. The key → version manifest lives in memory and in `manifestFile`, so a restart
 * rewrites nothing that is unchanged. Paths never escape `targetDir`, also not through symlinked
 * folders inside it.
 */
export class DagSync {
  private readonly store: DagSyncStore
  private readonly bucket: string
  private readonly prefix: string
  private readonly targetDir: string
  private readonly log: DagSyncLogger
  private readonly intervalMs: number
  private readonly manifestFile: string
  private readonly tmpDir: string
  private readonly eventLogFile: string | undefined

  private problem: DagSourceProblem | undefined
  private manifest: Map<string, ManifestEntry> | undefined
  private tmpDirReady = false
  private readonly warnedRefused = new Set<string>()
  private lastFailure: string | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private loopActive = false
  private timer: NodeJS.Timeout | undefined
  private currentTick: Promise<void> | undefined

  /** @param options - see `DagSyncOptions` */
  constructor(options: DagSyncOptions) {
    this.store = options.store
    this.bucket = options.bucket
    this.prefix = normalizePrefix(options.prefix)
    this.targetDir = resolve(options.targetDir)
    this.log = options.logger
    this.intervalMs = options.intervalMs ?? 1000
    this.manifestFile = resolve(
      options.manifestFile ?? join(this.targetDir, '..', '.dag-sync-manifest.json'),
    )
    this.tmpDir = resolve(
      options.tmpDir ??
        join(dirname(this.targetDir), `.${basename(this.targetDir)}.airdock-sync-tmp`),
    )
    this.eventLogFile = options.eventLogFile
  }

  /** The source problem the latest pass found, or `undefined` while the source is fine. */
  sourceProblem(): DagSourceProblem | undefined {
    return this.problem
  }

  /**
   * Runs one pass now (after any pass already running; passes never overlap).
   * @throws whatever the store throws for the listing or a download (other than
   *   `ObjectNotFoundError`, which means "changed meanwhile" and is retried next pass), and local
   *   file-system errors on `targetDir` itself or the manifest
   */
  syncOnce(): Promise<DagSyncResult> {
    const run = this.queue.then(() => this.pass())
    this.queue = run.catch(() => undefined)
    return run
  }

  /**
   * Starts the periodic loop: a pass now, then one `intervalMs` after each pass ends. A failed
   * pass is logged and retried on the next tick. Calling `start` while running does nothing.
   */
  start(): void {
    if (this.loopActive) return
    this.loopActive = true
    this.schedule(0)
  }

  /** Stops the loop and waits for a pass in progress to finish. */
  async stop(): Promise<void> {
    this.loopActive = false
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    await this.currentTick
    await this.queue
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.currentTick = this.tick().finally(() => {
        this.currentTick = undefined
        if (this.loopActive) this.schedule(this.intervalMs)
      })
    }, delayMs)
  }

  private async tick(): Promise<void> {
    try {
      await this.syncOnce()
      if (this.lastFailure !== undefined) {
        this.log.info({ bucket: this.bucket, prefix: this.prefix }, 'dag sync recovered')
        this.lastFailure = undefined
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      const level = message === this.lastFailure ? 'debug' : 'error'
      this.log[level](
        { err, bucket: this.bucket, prefix: this.prefix, retryInMs: this.intervalMs },
        'dag sync pass failed; retrying',
      )
      this.lastFailure = message
    }
  }

  private async pass(): Promise<DagSyncResult> {
    const result: DagSyncResult = { written: [], deleted: [], refused: [], failed: [] }
    let objects: ObjectInfo[]
    try {
      objects = await this.store.list(this.bucket, this.prefix)
    } catch (err) {
      if (err instanceof BucketNotFoundError) {
        await this.setProblem(
          'BUCKET_NOT_FOUND',
          `Bucket ${this.bucket} (SourceBucketArn) does not exist: DAG files are not synced; the ones synced before stay in place.`,
        )
      }
      throw err
    }
    if (objects.length === 0 && !(await this.store.prefixExists(this.bucket, this.prefix))) {
      await this.setProblem(
        'DAG_FOLDER_NOT_FOUND',
        `DagS3Path ${this.prefix} does not exist in bucket ${this.bucket}: the environment has no DAG files.`,
      )
    } else {
      await this.setProblem(undefined)
    }
    const manifest = await this.loadManifest()
    await mkdir(this.targetDir, { recursive: true })
    const targetReal = await realpath(this.targetDir)
    await this.prepareTmpDir()

    const desired = new Map<string, ObjectInfo>()
    for (const object of objects) {
      const placement = placeObjectKey(this.prefix, object.key)
      if (placement.kind === 'folder') continue
      if (placement.kind === 'refused') {
        result.refused.push(object.key)
        if (!this.warnedRefused.has(object.key)) {
          this.warnedRefused.add(object.key)
          this.log.warn(
            { key: object.key, reason: placement.reason },
            'object refused: path escapes the dags folder',
          )
        }
        continue
      }
      desired.set(placement.relativePath, object)
    }

    let dirty = false
    try {
      // Deletions first, so a file can turn into a folder of the same name (and back).
      for (const [relativePath, entry] of [...manifest]) {
        if (desired.has(relativePath)) continue
        if (await this.removeManaged(targetReal, relativePath)) result.deleted.push(entry.key)
        manifest.delete(relativePath)
        dirty = true
      }

      for (const [relativePath, object] of desired) {
        const entry = manifest.get(relativePath)
        const path = join(targetReal, ...relativePath.split('/'))
        if (
          entry?.bucket === this.bucket &&
          entry.key === object.key &&
          entry.version === object.version &&
          (await matchesSignature(path, entry))
        ) {
          continue
        }
        let content: Buffer
        try {
          content = await this.store.get(this.bucket, object.key, object.version)
        } catch (err) {
          if (!(err instanceof ObjectNotFoundError)) throw err
          // Changed or deleted since the listing: the next pass sees the new state.
          this.log.debug({ key: object.key }, 'object changed during dag sync; next pass')
          continue
        }
        try {
          await makeFoldersInside(targetReal, relativePath)
          await replaceFileAtomically(path, content, this.tmpDir)
          const stats = await lstat(path)
          manifest.set(relativePath, {
            bucket: this.bucket,
            key: object.key,
            version: object.version,
            sizeBytes: stats.size,
            mtimeMs: stats.mtimeMs,
            ino: stats.ino,
          })
          dirty = true
          result.written.push(object.key)
        } catch (err) {
          result.failed.push(object.key)
          this.log.error({ err, key: object.key }, 'dag sync could not write object locally')
        }
      }
    } finally {
      if (dirty) await this.saveManifest(manifest)
    }

    if (result.written.length > 0 || result.deleted.length > 0) {
      this.log.info(
        {
          bucket: this.bucket,
          prefix: this.prefix,
          written: result.written.length,
          deleted: result.deleted.length,
        },
        'dag sync applied changes',
      )
      await this.event(
        `synced s3://${this.bucket}/${this.prefix}: ${result.written.length} written, ${result.deleted.length} deleted`,
      )
    }
    for (const keys of [result.written, result.deleted, result.refused, result.failed]) keys.sort()
    return result
  }

  /**
   * Records the source problem of this pass (`undefined`: none). A new or different problem is
   * logged as a warning and written to the event log; its end is logged as a recovery.
   */
  private async setProblem(
    code: DagSourceProblem['code'] | undefined,
    message?: string,
  ): Promise<void> {
    const previous = this.problem
    if (code === undefined || message === undefined) {
      if (previous === undefined) return
      this.problem = undefined
      this.log.info({ bucket: this.bucket, prefix: this.prefix }, 'dag source found again')
      await this.event(`recovered: s3://${this.bucket}/${this.prefix} is readable again`)
      return
    }
    if (previous?.code === code) return
    this.problem = { code, message, since: new Date() }
    this.log.warn({ bucket: this.bucket, prefix: this.prefix, code }, message)
    await this.event(`${code}: ${message}`)
  }

  /** Appends a line to the event log (never fails a pass: a write error is only logged). */
  private async event(line: string): Promise<void> {
    if (this.eventLogFile === undefined) return
    try {
      await mkdir(dirname(this.eventLogFile), { recursive: true })
      await appendFile(this.eventLogFile, `${new Date().toISOString()} ${line}\n`)
    } catch (err) {
      this.log.warn({ err, eventLogFile: this.eventLogFile }, 'dag sync event log not writable')
    }
  }

  /**
   * Removes the managed file at `relativePath` unless something other than a file is there now,
   * then removes folders left empty. Returns whether a file was removed.
   */
  private async removeManaged(targetReal: string, relativePath: string): Promise<boolean> {
    const path = join(targetReal, ...relativePath.split('/'))
    const parent = dirname(path)
    let parentReal: string
    try {
      parentReal = await realpath(parent)
    } catch (err) {
      if (isMissing(err)) return false
      throw err
    }
    if (parentReal !== targetReal && !parentReal.startsWith(targetReal + sep)) return false
    const stats = await lstat(path).catch((err: unknown) => {
      if (isMissing(err)) return undefined
      throw err
    })
    if (stats === undefined || stats.isDirectory()) return false
    await unlink(path)
    await removeEmptyFolders(targetReal, parent)
    return true
  }

  private async prepareTmpDir(): Promise<void> {
    if (this.tmpDirReady) return
    // Leftovers of a crashed write are ours alone to discard.
    await rm(this.tmpDir, { recursive: true, force: true })
    await mkdir(this.tmpDir, { recursive: true })
    this.tmpDirReady = true
  }

  private async loadManifest(): Promise<Map<string, ManifestEntry>> {
    if (this.manifest !== undefined) return this.manifest
    const manifest = new Map<string, ManifestEntry>()
    let text: string | undefined
    try {
      text = await readFile(this.manifestFile, 'utf8')
    } catch (err) {
      if (!isMissing(err)) throw err
    }
    if (text !== undefined) {
      try {
        const parsed = JSON.parse(text) as Partial<ManifestFile>
        if (parsed.formatVersion === 1 && parsed.targetDir === this.targetDir) {
          for (const [relativePath, entry] of Object.entries(parsed.files ?? {})) {
            if (unsafePathReason(relativePath) === undefined && isManifestEntry(entry)) {
              manifest.set(relativePath, entry)
            }
          }
        } else {
          this.log.warn(
            { manifestFile: this.manifestFile },
            'dag sync manifest belongs to another folder; starting afresh',
          )
        }
      } catch (err) {
        this.log.warn(
          { err, manifestFile: this.manifestFile },
          'dag sync manifest unreadable; starting afresh',
        )
      }
    }
    this.manifest = manifest
    return manifest
  }

  private async saveManifest(manifest: Map<string, ManifestEntry>): Promise<void> {
    const data: ManifestFile = {
      formatVersion: 1,
      targetDir: this.targetDir,
      files: Object.fromEntries([...manifest].sort(([a], [b]) => (a < b ? -1 : 1))),
    }
    await mkdir(dirname(this.manifestFile), { recursive: true })
    const tmp = `${this.manifestFile}.${randomBytes(6).toString('hex')}.tmp`
    try {
      await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`)
      await rename(tmp, this.manifestFile)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
  }
}

/** Whether `path` is still the regular file the sync wrote (same size, mtime and inode). */
async function matchesSignature(path: string, entry: ManifestEntry): Promise<boolean> {
  try {
    const stats = await lstat(path)
    return (
      stats.isFile() &&
      stats.size === entry.sizeBytes &&
      stats.mtimeMs === entry.mtimeMs &&
      stats.ino === entry.ino
    )
  } catch (err) {
    if (isMissing(err)) return false
    throw err
  }
}

function isManifestEntry(value: unknown): value is ManifestEntry {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.bucket === 'string' &&
    typeof v.key === 'string' &&
    typeof v.version === 'string' &&
    typeof v.sizeBytes === 'number' &&
    typeof v.mtimeMs === 'number' &&
    typeof v.ino === 'number'
  )
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
