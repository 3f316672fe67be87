import {
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DagSync, placeObjectKey } from './dag-sync.js'
import type { DagSyncOptions, DagSyncStore } from './dag-sync.js'
import { FsObjectStore } from './fs-object-store.js'
import { BucketNotFoundError } from './object-store.js'
import type { ListedObject, ObjectInfo } from './object-store.js'

interface LogLine {
  level: number
  msg: string
  key?: string
  [field: string]: unknown
}

function captureLogger(): { logger: DagSyncOptions['logger']; lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as LogLine)
      },
    },
  )
  return { logger, lines }
}

/** A store that serves a fixed listing (for keys a folder bucket cannot hold) from memory. */
class MemoryStore implements DagSyncStore {
  readonly objects = new Map<string, Buffer>()
  listCalls = 0
  listInFlight = 0
  maxListInFlight = 0
  listDelayMs = 0
  failNextLists = 0

  async list(_bucket: string, prefix: string): Promise<ListedObject[]> {
    this.listCalls += 1
    this.listInFlight += 1
    this.maxListInFlight = Math.max(this.maxListInFlight, this.listInFlight)
    try {
      if (this.listDelayMs > 0) await new Promise((r) => setTimeout(r, this.listDelayMs))
      if (this.failNextLists > 0) {
        this.failNextLists -= 1
        throw new Error('store unreachable')
      }
      return [...this.objects]
        .filter(([key]) => key.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`))
        .map(([key, body]) => ({
          key,
          version: `v-${body.toString('hex')}`,
          sizeBytes: body.length,
          lastModified: new Date(0),
        }))
    } finally {
      this.listInFlight -= 1
    }
  }
  prefixExists(_bucket: string, prefix: string): Promise<boolean> {
    const folder = prefix.endsWith('/') ? prefix : `${prefix}/`
    return Promise.resolve([...this.objects.keys()].some((key) => key.startsWith(folder)))
  }
  get(_bucket: string, key: string): Promise<Buffer> {
    const body = this.objects.get(key)
    if (body === undefined) return Promise.reject(new Error(`missing ${key}`))
    return Promise.resolve(body)
  }
  put(_bucket: string, key: string, body: Buffer | string): Promise<ObjectInfo> {
    const content = Buffer.from(body)
    this.objects.set(key, content)
    return Promise.resolve({
      key,
      version: `v-${content.toString('hex')}`,
      sizeBytes: content.length,
    })
  }
  delete(_bucket: string, key: string): Promise<void> {
    this.objects.delete(key)
    return Promise.resolve()
  }
  ensureBucket(): Promise<void> {
    return Promise.resolve()
  }
}

async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  )

describe('placeObjectKey', () => {
  it('maps keys under the prefix to relative paths', () => {
    expect(placeObjectKey('dags', 'dags/a.py')).toEqual({ kind: 'file', relativePath: 'a.py' })
    expect(placeObjectKey('dags/', 'dags/sub/b.py')).toEqual({
      kind: 'file',
      relativePath: 'sub/b.py',
    })
    expect(placeObjectKey('', 'top.py')).toEqual({ kind: 'file', relativePath: 'top.py' })
  })

  it('ignores folder markers', () => {
    expect(placeObjectKey('dags', 'dags/')).toEqual({ kind: 'folder' })
    expect(placeObjectKey('dags', 'dags/sub/')).toEqual({ kind: 'folder' })
  })

  it.each([
    'dags/../escape.py',
    'dags/sub/../../escape.py',
    'dags/..',
    'dags//etc/passwd',
    'dags/./a.py',
    'dags/sub\\..\\x.py',
    'dags/nul\0.py',
    'other/a.py',
  ])('refuses %j', (key) => {
    expect(placeObjectKey('dags', key).kind).toBe('refused')
  })
})

describe('DagSync', () => {
  let root: string
  let store: FsObjectStore
  let targetDir: string
  const bucket = 'env-bucket'

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'airdock-dag-sync-'))
    store = new FsObjectStore({ rootDir: join(root, 'buckets') })
    await store.ensureBucket(bucket)
    targetDir = join(root, 'env', 'dags')
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  const newSync = (overrides: Partial<DagSyncOptions> = {}) => {
    const { logger, lines } = captureLogger()
    const sync = new DagSync({ store, bucket, prefix: 'dags', targetDir, logger, ...overrides })
    return { sync, lines }
  }
  const local = (rel: string) => readFile(join(targetDir, rel), 'utf8')

  it('writes new files, preserving subfolders and any file type', async () => {
    await store.put(bucket, 'dags/a.py', 'a = 1\n')
    await store.put(bucket, 'dags/sub/deeper/b.py', 'b = 2\n')
    await store.put(bucket, 'dags/sql/query.sql', 'select 1')
    await store.put(bucket, 'dags/data.bin', Buffer.from([0, 255, 1, 254]))
    await store.put(bucket, 'plugins/not-mine.py', 'no')
    await store.put(bucket, 'dagsX/not-mine.py', 'no')
    const { sync } = newSync()

    const result = await sync.syncOnce()
    expect(result).toEqual({
      written: ['dags/a.py', 'dags/data.bin', 'dags/sql/query.sql', 'dags/sub/deeper/b.py'],
      deleted: [],
      refused: [],
      failed: [],
    })
    expect(await local('a.py')).toBe('a = 1\n')
    expect(await local('sub/deeper/b.py')).toBe('b = 2\n')
    expect(await local('sql/query.sql')).toBe('select 1')
    expect([...(await readFile(join(targetDir, 'data.bin')))]).toEqual([0, 255, 1, 254])
    expect((await readdir(targetDir)).sort()).toEqual(['a.py', 'data.bin', 'sql', 'sub'])
  })

  it('does nothing when nothing changed', async () => {
    await store.put(bucket, 'dags/a.py', 'a')
    const { sync } = newSync()
    await sync.syncOnce()
    const before = await stat(join(targetDir, 'a.py'))
    expect(await sync.syncOnce()).toEqual({ written: [], deleted: [], refused: [], failed: [] })
    expect((await stat(join(targetDir, 'a.py'))).mtimeMs).toBe(before.mtimeMs)
  })

  it('rewrites changed files', async () => {
    await store.put(bucket, 'dags/a.py', 'old')
    const { sync } = newSync()
    await sync.syncOnce()
    await store.put(bucket, 'dags/a.py', 'new content')
    expect((await sync.syncOnce()).written).toEqual(['dags/a.py'])
    expect(await local('a.py')).toBe('new content')
  })

  it('deletes files whose object is gone and removes folders left empty', async () => {
    await store.put(bucket, 'dags/keep.py', 'k')
    await store.put(bucket, 'dags/sub/deeper/gone.py', 'g')
    await store.put(bucket, 'dags/other/gone-too.py', 'g')
    const { sync } = newSync()
    await sync.syncOnce()
    await mkdir(join(targetDir, 'other', '__pycache__'))
    await writeFile(join(targetDir, 'other', '__pycache__', 'gone-too.cpython-312.pyc'), 'pyc')

    await store.delete(bucket, 'dags/sub/deeper/gone.py')
    await store.delete(bucket, 'dags/other/gone-too.py')
    const result = await sync.syncOnce()
    expect(result.deleted).toEqual(['dags/other/gone-too.py', 'dags/sub/deeper/gone.py'])
    expect(await exists(join(targetDir, 'sub'))).toBe(false)
    // Files it did not write stay, and so does their folder.
    expect(await readdir(join(targetDir, 'other', '__pycache__'))).toEqual([
      'gone-too.cpython-312.pyc',
    ])
    expect(await local('keep.py')).toBe('k')
  })

  it('never deletes files it does not manage', async () => {
    await mkdir(targetDir, { recursive: true })
    await writeFile(join(targetDir, 'local-only.py'), 'mine')
    await mkdir(join(targetDir, '__pycache__'))
    await writeFile(join(targetDir, '__pycache__', 'x.pyc'), 'pyc')
    const { sync } = newSync()
    await store.put(bucket, 'dags/a.py', 'a')
    await sync.syncOnce()
    await store.delete(bucket, 'dags/a.py')
    expect((await sync.syncOnce()).deleted).toEqual(['dags/a.py'])
    expect((await readdir(targetDir)).sort()).toEqual(['__pycache__', 'local-only.py'])
  })

  it('turns a file into a folder of the same name and back', async () => {
    await store.put(bucket, 'dags/thing', 'file')
    const { sync } = newSync()
    await sync.syncOnce()
    await store.delete(bucket, 'dags/thing')
    await store.put(bucket, 'dags/thing/inner.py', 'inner')
    expect(await sync.syncOnce()).toMatchObject({ written: ['dags/thing/inner.py'], failed: [] })
    expect(await local('thing/inner.py')).toBe('inner')
    await store.delete(bucket, 'dags/thing/inner.py')
    await store.put(bucket, 'dags/thing', 'file again')
    expect(await sync.syncOnce()).toMatchObject({ written: ['dags/thing'], failed: [] })
    expect(await local('thing')).toBe('file again')
  })

  it('restores a file deleted or edited by hand', async () => {
    await store.put(bucket, 'dags/a.py', 'original')
    await store.put(bucket, 'dags/sub/b.py', 'bee')
    const { sync } = newSync()
    await sync.syncOnce()

    await unlink(join(targetDir, 'sub', 'b.py'))
    await writeFile(join(targetDir, 'a.py'), 'hand edit')
    expect((await sync.syncOnce()).written).toEqual(['dags/a.py', 'dags/sub/b.py'])
    expect(await local('a.py')).toBe('original')
    expect(await local('sub/b.py')).toBe('bee')
  })

  it('keeps its manifest across a restart and rewrites nothing unchanged', async () => {
    await store.put(bucket, 'dags/a.py', 'a')
    await store.put(bucket, 'dags/sub/b.py', 'b')
    await newSync().sync.syncOnce()
    expect(await exists(join(root, 'env', '.dag-sync-manifest.json'))).toBe(true)
    const before = await stat(join(targetDir, 'a.py'))

    await store.delete(bucket, 'dags/sub/b.py')
    const restarted = newSync().sync
    expect(await restarted.syncOnce()).toEqual({
      written: [],
      deleted: ['dags/sub/b.py'],
      refused: [],
      failed: [],
    })
    expect((await stat(join(targetDir, 'a.py'))).mtimeMs).toBe(before.mtimeMs)
  })

  it('honours a custom manifest path and survives a corrupt manifest', async () => {
    const manifestFile = join(root, 'state', 'manifest.json')
    await store.put(bucket, 'dags/a.py', 'a')
    await newSync({ manifestFile }).sync.syncOnce()
    expect(JSON.parse(await readFile(manifestFile, 'utf8'))).toMatchObject({
      formatVersion: 1,
      files: { 'a.py': { key: 'dags/a.py', bucket } },
    })
    await writeFile(manifestFile, '{ not json')
    const { sync, lines } = newSync({ manifestFile })
    expect((await sync.syncOnce()).written).toEqual(['dags/a.py'])
    expect(lines.some((l) => l.msg.includes('manifest unreadable'))).toBe(true)
  })

  it('writes through a temporary folder outside the dags folder', async () => {
    await store.put(bucket, 'dags/a.py', 'a')
    const { sync } = newSync()
    await sync.syncOnce()
    expect(await readdir(targetDir)).toEqual(['a.py'])
    expect(await readdir(join(root, 'env', '.dags.airdock-sync-tmp'))).toEqual([])
  })

  it('refuses keys that escape the dags folder and logs a warning once', async () => {
    const memory = new MemoryStore()
    await memory.put(bucket, 'dags/ok.py', 'ok')
    await memory.put(bucket, 'dags/../escape.py', 'evil')
    await memory.put(bucket, 'dags/sub/../../escape2.py', 'evil')
    await memory.put(bucket, 'dags/folder/', '')
    const { sync, lines } = newSync({ store: memory })

    const result = await sync.syncOnce()
    expect(result).toEqual({
      written: ['dags/ok.py'],
      deleted: [],
      refused: ['dags/../escape.py', 'dags/sub/../../escape2.py'],
      failed: [],
    })
    expect((await sync.syncOnce()).refused).toHaveLength(2)
    expect(await exists(join(root, 'env', 'escape.py'))).toBe(false)
    expect(await exists(join(root, 'escape2.py'))).toBe(false)
    expect(await readdir(targetDir)).toEqual(['ok.py'])
    const warnings = lines.filter((l) => l.msg === 'object refused: path escapes the dags folder')
    expect(warnings.map((l) => l.key).sort()).toEqual([
      'dags/../escape.py',
      'dags/sub/../../escape2.py',
    ])
    expect(warnings.every((l) => l.level === 40)).toBe(true)
  })

  it('does not write through a symlinked folder that leaves the dags folder', async () => {
    const outside = join(root, 'outside')
    await mkdir(outside)
    await mkdir(targetDir, { recursive: true })
    await symlink(outside, join(targetDir, 'sub'))
    await store.put(bucket, 'dags/sub/x.py', 'x')
    const { sync } = newSync()
    expect((await sync.syncOnce()).failed).toEqual(['dags/sub/x.py'])
    expect(await readdir(outside)).toEqual([])
  })

  it('skips an object that changed between list and get, and picks it up next pass', async () => {
    await store.put(bucket, 'dags/a.py', 'v1')
    const racing: DagSyncStore = {
      list: (b, p) => store.list(b, p),
      get: async (b, k, v) => {
        await store.put(bucket, 'dags/a.py', 'v2')
        return store.get(b, k, v)
      },
      prefixExists: (b, p) => store.prefixExists(b, p),
    }
    const { sync } = newSync({ store: racing })
    expect(await sync.syncOnce()).toEqual({ written: [], deleted: [], refused: [], failed: [] })
    expect((await newSync().sync.syncOnce()).written).toEqual(['dags/a.py'])
    expect(await local('a.py')).toBe('v2')
  })

  it('reports a bucket that disappears, keeps the synced DAGs, and reports its return', async () => {
    await store.put(bucket, 'dags/a.py', 'a')
    const eventLogFile = join(root, 'env', 'logs', 'dag-sync.log')
    const { sync, lines } = newSync({ eventLogFile })
    await sync.syncOnce()
    expect(sync.sourceProblem()).toBeUndefined()
    const bucketDir = join(root, 'buckets', bucket)
    await rename(bucketDir, `${bucketDir}-away`)

    await expect(sync.syncOnce()).rejects.toBeInstanceOf(BucketNotFoundError)
    expect(sync.sourceProblem()).toMatchObject({
      code: 'BUCKET_NOT_FOUND',
      message: expect.stringContaining(`Bucket ${bucket} (SourceBucketArn) does not exist`),
    })
    expect(await local('a.py')).toBe('a')
    await expect(sync.syncOnce()).rejects.toBeInstanceOf(BucketNotFoundError)
    // Logged (and written to the event log) once, not on every pass.
    expect(lines.filter((l) => l.code === 'BUCKET_NOT_FOUND')).toHaveLength(1)
    expect(lines.find((l) => l.code === 'BUCKET_NOT_FOUND')?.level).toBe(40)

    await rename(`${bucketDir}-away`, bucketDir)
    await sync.syncOnce()
    expect(sync.sourceProblem()).toBeUndefined()
    const events = (await readFile(eventLogFile, 'utf8')).trim().split('\n')
    expect(events).toHaveLength(3)
    expect(events[0]).toMatch(/^\S+Z synced s3:\/\/env-bucket\/dags\/: 1 written, 0 deleted$/)
    expect(events[1]).toContain(`BUCKET_NOT_FOUND: Bucket ${bucket} (SourceBucketArn)`)
    expect(events[2]).toContain('recovered: s3://env-bucket/dags/ is readable again')
  })

  it('reports a DAG folder that disappears and mirrors it empty', async () => {
    await store.put(bucket, 'dags/a.py', 'a')
    const eventLogFile = join(root, 'env', 'logs', 'dag-sync.log')
    const { sync } = newSync({ eventLogFile })
    await sync.syncOnce()
    await rm(join(root, 'buckets', bucket, 'dags'), { recursive: true })

    expect((await sync.syncOnce()).deleted).toEqual(['dags/a.py'])
    expect(sync.sourceProblem()).toMatchObject({
      code: 'DAG_FOLDER_NOT_FOUND',
      message: `DagS3Path dags/ does not exist in bucket ${bucket}: the environment has no DAG files.`,
    })
    expect(await readFile(eventLogFile, 'utf8')).toContain('DAG_FOLDER_NOT_FOUND: DagS3Path dags/')
    // An empty folder is a folder: no problem.
    await mkdir(join(root, 'buckets', bucket, 'dags'))
    await sync.syncOnce()
    expect(sync.sourceProblem()).toBeUndefined()
  })

  it('runs periodically, never overlapping, and retries after errors', async () => {
    const memory = new MemoryStore()
    memory.listDelayMs = 30
    memory.failNextLists = 2
    const { sync, lines } = newSync({ store: memory, intervalMs: 10 })
    await memory.put(bucket, 'dags/a.py', 'a')
    sync.start()
    sync.start() // idempotent
    await waitFor(() => exists(join(targetDir, 'a.py')))
    expect(memory.listCalls).toBeGreaterThanOrEqual(3) // two failed passes, then success
    await memory.put(bucket, 'dags/b.py', 'b')
    // Manual passes queue behind the loop's passes.
    await Promise.all([sync.syncOnce(), sync.syncOnce()])
    await waitFor(() => exists(join(targetDir, 'b.py')))
    await sync.stop()

    expect(memory.maxListInFlight).toBe(1)
    const failures = lines.filter((l) => l.msg === 'dag sync pass failed; retrying')
    // The same failure twice in a row is logged as an error once, then at debug level.
    expect(failures.map((l) => l.level)).toEqual([50, 20])
    expect(lines.some((l) => l.msg === 'dag sync recovered')).toBe(true)
    const callsAfterStop = memory.listCalls
    await new Promise((r) => setTimeout(r, 100))
    expect(memory.listCalls).toBe(callsAfterStop)
  })
})
