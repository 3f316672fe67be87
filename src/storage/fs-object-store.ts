/**
 * Folder buckets (DESIGN.md decision 5): bucket `NAME` is the folder `${rootDir}/NAME/`, an
 * object key is a relative path inside it, and an object's version is the lowercase hex SHA-256
 * of its content. Users drop files in with any tool; airdock reads them like S3 objects.
 */
import { createHash, randomBytes } from 'node:crypto'
import type { Dirent, Stats } from 'node:fs'
import {
  lstat,
  mkdir,
  readFile,
  readdir,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'
import {
  BucketNotFoundError,
  InvalidObjectKeyError,
  ObjectNotFoundError,
  assertBucketName,
  normalizePrefix,
  unsafePathReason,
} from './object-store.js'
import type { ListedObject, ObjectInfo, ObjectStore } from './object-store.js'

/** Options of `FsObjectStore`. */
export interface FsObjectStoreOptions {
  /** Folder holding one subfolder per bucket, e.g. `$AIRDOCK_DATA_DIR/buckets`. */
  rootDir: string
}

/** Hidden folder under `rootDir` for writes in progress (bucket names cannot start with `.`). */
const tmpFolderName = '.airdock-tmp'

interface CachedHash {
  signature: string
  sha256: string
}

/**
 * `ObjectStore` over local folders. Keys that would leave the bucket folder (`..`, absolute
 * paths, NUL, backslashes, empty or `.` segments) are refused with `InvalidObjectKeyError`;
 * symlinks are followed only while they stay inside the bucket folder, others are invisible.
 * `put` is atomic (write to a temporary file under `${rootDir}/.airdock-tmp/`, then rename).
 * Hashes are cached per file by (size, mtime, inode, device), so listing an unchanged folder
 * reads no file contents.
 */
export class FsObjectStore implements ObjectStore {
  private readonly rootDir: string
  private readonly hashCache = new Map<string, CachedHash>()

  /** @param options - see `FsObjectStoreOptions` */
  constructor(options: FsObjectStoreOptions) {
    this.rootDir = options.rootDir
  }

  /** The folder that holds `bucket`'s objects (the bucket name is validated). */
  bucketDir(bucket: string): string {
    assertBucketName(bucket)
    return join(this.rootDir, bucket)
  }

  async ensureBucket(bucket: string): Promise<void> {
    await mkdir(this.bucketDir(bucket), { recursive: true })
  }

  async list(bucket: string, prefix: string): Promise<ListedObject[]> {
    const bucketRoot = await this.realBucketDir(bucket)
    const folder = normalizePrefix(prefix)
    const start = await this.prefixFolder(bucketRoot, folder)
    if (start === undefined) return []
    const { startDir, real } = start

    const objects: ListedObject[] = []
    const seen = new Set<string>()
    await this.walk(bucketRoot, startDir, folder, new Set([real]), objects, seen)
    for (const path of this.hashCache.keys()) {
      if (path.startsWith(startDir + sep) && !seen.has(path)) this.hashCache.delete(path)
    }
    return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  async head(bucket: string, key: string, version?: string): Promise<ListedObject> {
    const bucketRoot = await this.realBucketDir(bucket)
    const path = this.objectPath(bucketRoot, key)
    const real = await this.realPathInside(bucketRoot, path)
    const stats = real === undefined ? undefined : await stat(real).catch(() => undefined)
    const current = stats?.isFile() === true ? await this.cachedHash(path, stats) : undefined
    if (
      stats === undefined ||
      current === undefined ||
      (version !== undefined && version !== current)
    ) {
      throw new ObjectNotFoundError(bucket, key, version)
    }
    return { key, version: current, sizeBytes: stats.size, lastModified: stats.mtime }
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.realBucketDir(bucket)
      return true
    } catch (err) {
      if (err instanceof BucketNotFoundError) return false
      throw err
    }
  }

  async prefixExists(bucket: string, prefix: string): Promise<boolean> {
    const bucketRoot = await this.realBucketDir(bucket)
    return (await this.prefixFolder(bucketRoot, normalizePrefix(prefix))) !== undefined
  }

  async get(bucket: string, key: string, version?: string): Promise<Buffer> {
    const bucketRoot = await this.realBucketDir(bucket)
    const path = this.objectPath(bucketRoot, key)
    const real = await this.realPathInside(bucketRoot, path)
    let content: Buffer
    try {
      if (real === undefined) throw new ObjectNotFoundError(bucket, key)
      content = await readFile(real)
    } catch (err) {
      if (err instanceof ObjectNotFoundError || isMissingOrNotFile(err)) {
        throw new ObjectNotFoundError(bucket, key, version)
      }
      throw err
    }
    if (version !== undefined && sha256Hex(content) !== version) {
      throw new ObjectNotFoundError(bucket, key, version)
    }
    return content
  }

  async put(bucket: string, key: string, body: Buffer | string): Promise<ObjectInfo> {
    const bucketRoot = await this.realBucketDir(bucket)
    const path = this.objectPath(bucketRoot, key)
    const content = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
    await makeFoldersInside(bucketRoot, key)
    const tmpDir = join(this.rootDir, tmpFolderName)
    await mkdir(tmpDir, { recursive: true })
    await replaceFileAtomically(path, content, tmpDir)
    return { key, version: sha256Hex(content), sizeBytes: content.length }
  }

  async delete(bucket: string, key: string): Promise<void> {
    const bucketRoot = await this.realBucketDir(bucket)
    const path = this.objectPath(bucketRoot, key)
    const parent = dirname(path)
    const realParent = await this.realPathInside(bucketRoot, parent)
    if (realParent === undefined) return
    let stats: Stats
    try {
      stats = await lstat(path)
    } catch (err) {
      if (isMissingOrNotFile(err)) return // nothing to delete, as in S3
      throw err
    }
    if (stats.isDirectory()) return
    await unlink(path)
    await removeEmptyFolders(bucketRoot, parent)
  }

  /**
   * The folder a normalized prefix names: its path below the bucket folder and its real path,
   * or `undefined` when it is not an existing folder inside the bucket (a prefix no file path
   * can have, e.g. `../x`, names none).
   */
  private async prefixFolder(
    bucketRoot: string,
    folder: string,
  ): Promise<{ startDir: string; real: string } | undefined> {
    if (folder !== '' && unsafePathReason(folder.slice(0, -1)) !== undefined) return undefined
    const startDir = join(bucketRoot, ...folder.split('/').filter((s) => s !== ''))
    const real = await this.realPathInside(bucketRoot, startDir)
    if (real === undefined) return undefined
    const startStats = await stat(real).catch(() => undefined)
    return startStats?.isDirectory() === true ? { startDir, real } : undefined
  }

  /** The bucket folder's real path; `BucketNotFoundError` when it does not exist. */
  private async realBucketDir(bucket: string): Promise<string> {
    const dir = this.bucketDir(bucket)
    try {
      const real = await realpath(dir)
      if ((await stat(real)).isDirectory()) return real
    } catch (err) {
      if (!isMissingOrNotFile(err)) throw err
    }
    throw new BucketNotFoundError(bucket)
  }

  /** Absolute path of `key` inside the bucket folder, after refusing unsafe keys. */
  private objectPath(bucketRoot: string, key: string): string {
    const reason = unsafePathReason(key)
    if (reason !== undefined) throw new InvalidObjectKeyError(key, reason)
    return join(bucketRoot, ...key.split('/'))
  }

  /** Real path of `path` when it exists and resolves inside `bucketRoot`, else `undefined`. */
  private async realPathInside(bucketRoot: string, path: string): Promise<string | undefined> {
    const real = await realPathOrUndefined(path)
    if (real === undefined) return undefined
    return real === bucketRoot || real.startsWith(bucketRoot + sep) ? real : undefined
  }

  private async walk(
    bucketRoot: string,
    dir: string,
    keyPrefix: string,
    ancestors: Set<string>,
    out: ListedObject[],
    seen: Set<string>,
  ): Promise<void> {
    let entries: Dirent[]
    try {
      entries = await readdir(dir, { withFileTypes: true })
    } catch (err) {
      // The folder vanished (or became a file) while we walked: it holds no objects now.
      if (isMissingOrNotFile(err)) return
      throw err
    }
    for (const entry of entries) {
      const path = join(dir, entry.name)
      const key = keyPrefix + entry.name
      if (unsafePathReason(key) !== undefined) continue
      let stats: Stats
      let realDir = path
      if (entry.isSymbolicLink()) {
        const real = await this.realPathInside(bucketRoot, path)
        if (real === undefined) continue
        const targetStats = await stat(real).catch(() => undefined) // vanished since readdir
        if (targetStats === undefined) continue
        stats = targetStats
        realDir = real
      } else if (entry.isFile() || entry.isDirectory()) {
        const entryStats = await stat(path).catch(() => undefined) // vanished since readdir
        if (entryStats === undefined) continue
        stats = entryStats
      } else {
        continue
      }
      if (stats.isDirectory()) {
        if (ancestors.has(realDir)) continue // a symlink loop
        const next = new Set(ancestors).add(realDir)
        await this.walk(bucketRoot, path, `${key}/`, next, out, seen)
      } else if (stats.isFile()) {
        const version = await this.cachedHash(path, stats)
        if (version === undefined) continue
        seen.add(path)
        out.push({ key, version, sizeBytes: stats.size, lastModified: stats.mtime })
      }
    }
  }

  private async cachedHash(path: string, stats: Stats): Promise<string | undefined> {
    const signature = `${stats.size}:${stats.mtimeMs}:${stats.ino}:${stats.dev}`
    const cached = this.hashCache.get(path)
    if (cached?.signature === signature) return cached.sha256
    let content: Buffer
    try {
      content = await readFile(path)
    } catch (err) {
      // Deleted between readdir and read: not an object any more.
      if (isMissingOrNotFile(err)) return undefined
      throw err
    }
    const sha256 = sha256Hex(content)
    this.hashCache.set(path, { signature, sha256 })
    return sha256
  }
}

/** Lowercase hex SHA-256 of `content`: a folder bucket's object version. */
export function sha256Hex(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex')
}

/**
 * Creates the folders on `relativePath`'s path below `rootReal` (a real path, symlinks resolved)
 * one by one, checking that each one that already exists resolves to a folder inside `rootReal`
 * — so nothing is ever created or written outside it. `relativePath` must already have passed
 * `unsafePathReason`; its last segment (the file) is not created.
 * @throws InvalidObjectKeyError - a folder on the path is a symlink leaving `rootReal`, a
 *   dangling symlink, or a file
 */
export async function makeFoldersInside(rootReal: string, relativePath: string): Promise<void> {
  const segments = relativePath.split('/').slice(0, -1)
  let current = rootReal
  for (const segment of segments) {
    current = join(current, segment)
    let real = await realPathOrUndefined(current)
    if (real === undefined) {
      try {
        await mkdir(current)
        continue
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      // Something exists there but does not resolve: a dangling symlink (or a racing writer).
      real = await realPathOrUndefined(current)
      if (real === undefined) {
        throw new InvalidObjectKeyError(
          relativePath,
          `${segment} on its path is a dangling symlink`,
        )
      }
    }
    if (!real.startsWith(rootReal + sep)) {
      throw new InvalidObjectKeyError(
        relativePath,
        `${segment} on its path is a symlink leaving ${rootReal}`,
      )
    }
    if (!(await stat(real)).isDirectory()) {
      throw new InvalidObjectKeyError(
        relativePath,
        `${segment} on its path is a file, not a folder`,
      )
    }
  }
}

/**
 * Replaces (or creates) the file `path` with `content` atomically: the bytes go to a new file in
 * `tmpDir` (which must exist, ideally on the same file system and outside any watched folder),
 * which is then renamed onto `path`. Readers see the old file or the new one, never a partial one.
 * If `tmpDir` is on another file system, the temporary file is staged beside `path` under a hidden
 * name instead. The temporary file never lingers.
 */
export async function replaceFileAtomically(
  path: string,
  content: Buffer,
  tmpDir: string,
): Promise<void> {
  try {
    await writeThenRename(join(tmpDir, `${randomBytes(8).toString('hex')}.tmp`), path, content)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err
    const sibling = join(dirname(path), `.${randomBytes(8).toString('hex')}.airdock-tmp`)
    await writeThenRename(sibling, path, content)
  }
}

async function writeThenRename(tmpPath: string, path: string, content: Buffer): Promise<void> {
  try {
    await writeFile(tmpPath, content)
    await rename(tmpPath, path)
  } catch (err) {
    await rm(tmpPath, { force: true })
    throw err
  }
}

/**
 * Removes `dir` and then its parents while they are empty, stopping at (never removing) `stopAt`;
 * does nothing for a `dir` not below `stopAt`.
 */
export async function removeEmptyFolders(stopAt: string, dir: string): Promise<void> {
  let current = dir
  while (current !== stopAt && current.startsWith(stopAt + sep)) {
    try {
      await rmdir(current)
    } catch {
      // Not empty (or already gone, or not ours to remove): stop climbing.
      return
    }
    current = dirname(current)
  }
}

async function realPathOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await realpath(path)
  } catch (err) {
    if (isMissingOrNotFile(err)) return undefined
    throw err
  }
}

function isMissingOrNotFile(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR' || code === 'ELOOP'
}
