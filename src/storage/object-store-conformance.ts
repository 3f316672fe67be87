/**
 * The behaviour every `ObjectStore` adapter must show, as a vitest suite. Adapter test files call
 * `runObjectStoreConformance` once with a factory for a fresh, empty bucket.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ObjectNotFoundError } from './object-store.js'
import type { ObjectInfo, ObjectStore } from './object-store.js'

/** What a conformance test gets from its setup: a store, an existing empty bucket, a cleanup. */
export interface ObjectStoreFixture {
  store: ObjectStore
  /** Name of an existing, empty bucket owned by this test. */
  bucket: string
  /** Releases whatever setup created; called after each test. */
  cleanup(): Promise<void>
}

/**
 * Registers a `describe(name)` block of conformance tests. `setup` runs before every test and
 * must return an existing, empty bucket; `cleanup` runs after it.
 */
export function runObjectStoreConformance(
  name: string,
  setup: () => Promise<ObjectStoreFixture>,
): void {
  describe(name, () => {
    let fixture: ObjectStoreFixture | undefined
    const ctx = (): ObjectStoreFixture => {
      if (fixture === undefined) throw new Error('conformance setup did not run')
      return fixture
    }

    beforeEach(async () => {
      fixture = await setup()
    })
    afterEach(async () => {
      await fixture?.cleanup()
      fixture = undefined
    })

    const keysOf = (objects: ObjectInfo[]): string[] => objects.map((o) => o.key).sort()

    it('round-trips put, list and get', async () => {
      const { store, bucket } = ctx()
      const put = await store.put(bucket, 'dags/hello.py', 'print("hello")\n')
      expect(put).toMatchObject({ key: 'dags/hello.py', sizeBytes: 15 })
      expect(put.version).not.toBe('')

      const listed = await store.list(bucket, 'dags')
      expect(listed).toHaveLength(1)
      expect(listed[0]).toMatchObject({ key: 'dags/hello.py', sizeBytes: 15 })
      const listedVersion = listed[0]?.version ?? ''
      expect(listedVersion).not.toBe('')

      const text = 'print("hello")\n'
      expect((await store.get(bucket, 'dags/hello.py')).toString('utf8')).toBe(text)
      expect((await store.get(bucket, 'dags/hello.py', listedVersion)).toString('utf8')).toBe(text)
      expect((await store.get(bucket, 'dags/hello.py', put.version)).toString('utf8')).toBe(text)
    })

    it('stores strings as UTF-8 and counts bytes', async () => {
      const { store, bucket } = ctx()
      const put = await store.put(bucket, 'notes.txt', 'héllo ✓')
      expect(put.sizeBytes).toBe(Buffer.byteLength('héllo ✓', 'utf8'))
      expect((await store.list(bucket, ''))[0]?.sizeBytes).toBe(put.sizeBytes)
      expect((await store.get(bucket, 'notes.txt')).toString('utf8')).toBe('héllo ✓')
    })

    it('lists nested prefixes recursively with full keys', async () => {
      const { store, bucket } = ctx()
      await store.put(bucket, 'dags/a.py', 'a')
      await store.put(bucket, 'dags/sub/b.py', 'b')
      await store.put(bucket, 'dags/sub/deeper/c.txt', 'c')
      await store.put(bucket, 'plugins.zip', 'zip')

      expect(keysOf(await store.list(bucket, 'dags'))).toEqual([
        'dags/a.py',
        'dags/sub/b.py',
        'dags/sub/deeper/c.txt',
      ])
      expect(keysOf(await store.list(bucket, 'dags/sub/'))).toEqual([
        'dags/sub/b.py',
        'dags/sub/deeper/c.txt',
      ])
      expect(keysOf(await store.list(bucket, ''))).toEqual([
        'dags/a.py',
        'dags/sub/b.py',
        'dags/sub/deeper/c.txt',
        'plugins.zip',
      ])
    })

    it('lists in key order', async () => {
      const { store, bucket } = ctx()
      for (const key of ['d/c.py', 'd/a/z.py', 'd/b.py', 'd/a.py']) {
        await store.put(bucket, key, key)
      }
      // Plain code-unit order, as S3 returns it ('.' sorts before '/').
      expect((await store.list(bucket, 'd')).map((o) => o.key)).toEqual([
        'd/a.py',
        'd/a/z.py',
        'd/b.py',
        'd/c.py',
      ])
    })

    it('treats the prefix as a folder', async () => {
      const { store, bucket } = ctx()
      await store.put(bucket, 'dags/a.py', 'a')
      await store.put(bucket, 'dagsX/b.py', 'b')
      await store.put(bucket, 'dags-old/c.py', 'c')
      await store.put(bucket, 'dags.py', 'd')

      expect(keysOf(await store.list(bucket, 'dags'))).toEqual(['dags/a.py'])
      expect(keysOf(await store.list(bucket, 'dags/'))).toEqual(['dags/a.py'])
      expect(await store.list(bucket, 'nothing-here')).toEqual([])
    })

    it('deletes objects, and deleting a missing key is not an error', async () => {
      const { store, bucket } = ctx()
      await store.put(bucket, 'dags/sub/a.py', 'a')
      await store.put(bucket, 'dags/b.py', 'b')
      await store.delete(bucket, 'dags/sub/a.py')

      expect(keysOf(await store.list(bucket, 'dags'))).toEqual(['dags/b.py'])
      await expect(store.get(bucket, 'dags/sub/a.py')).rejects.toBeInstanceOf(ObjectNotFoundError)
      await expect(store.delete(bucket, 'dags/sub/a.py')).resolves.toBeUndefined()
      await expect(store.delete(bucket, 'never/existed.py')).resolves.toBeUndefined()
    })

    it('changes the version when the content changes, and never serves other content for a version', async () => {
      const { store, bucket } = ctx()
      const firstPut = await store.put(
        bucket,
        'requirements.txt',
        'apache-airflow-providers-http\n',
      )
      const [first] = await store.list(bucket, '')
      const secondPut = await store.put(bucket, 'requirements.txt', 'boto3\n')
      const [second] = await store.list(bucket, '')

      expect(second?.version).not.toBe(first?.version)
      expect(secondPut.version).not.toBe(firstPut.version)
      expect((await store.get(bucket, 'requirements.txt', second?.version)).toString()).toBe(
        'boto3\n',
      )
      expect((await store.get(bucket, 'requirements.txt', secondPut.version)).toString()).toBe(
        'boto3\n',
      )
      // An old version is either still readable (versioned S3) or gone — never the new content.
      for (const old of [first?.version, firstPut.version]) {
        const content = await store.get(bucket, 'requirements.txt', old).then(
          (body) => body.toString(),
          (err: unknown) => {
            expect(err).toBeInstanceOf(ObjectNotFoundError)
            return undefined
          },
        )
        if (content !== undefined) expect(content).toBe('apache-airflow-providers-http\n')
      }
    })

    it('keeps the version when the same content is written again', async () => {
      const { store, bucket } = ctx()
      await store.put(bucket, 'dags/same.py', 'x = 1\n')
      const [first] = await store.list(bucket, 'dags')
      await store.put(bucket, 'dags/same.py', 'x = 1\n')
      const [second] = await store.list(bucket, 'dags')
      expect(second?.version).toBe(first?.version)
    })

    it('throws ObjectNotFoundError for a missing key or version', async () => {
      const { store, bucket } = ctx()
      await expect(store.get(bucket, 'dags/missing.py')).rejects.toBeInstanceOf(ObjectNotFoundError)
      await store.put(bucket, 'dags/present.py', 'x')
      const wrongEtagLike = 'ffffffffffffffffffffffffffffffff'
      const wrongSha = 'f'.repeat(64)
      for (const version of [wrongEtagLike, wrongSha, 'no-such-version']) {
        const error: unknown = await store.get(bucket, 'dags/present.py', version).then(
          () => undefined,
          (err: unknown) => err,
        )
        expect(error).toBeInstanceOf(ObjectNotFoundError)
        expect((error as ObjectNotFoundError).message).toContain(version)
        expect((error as ObjectNotFoundError).key).toBe('dags/present.py')
      }
    })

    it('preserves binary content byte for byte', async () => {
      const { store, bucket } = ctx()
      const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
      const body = Buffer.concat([allBytes, randomBytes(200_000), allBytes])
      const put = await store.put(bucket, 'plugins/plugins.zip', body)
      expect(put.sizeBytes).toBe(body.length)
      const [listed] = await store.list(bucket, 'plugins')
      expect(listed?.sizeBytes).toBe(body.length)
      expect((await store.get(bucket, 'plugins/plugins.zip')).equals(body)).toBe(true)
    })

    it('stores an empty object', async () => {
      const { store, bucket } = ctx()
      const put = await store.put(bucket, 'dags/__init__.py', Buffer.alloc(0))
      expect(put.sizeBytes).toBe(0)
      expect(await store.list(bucket, 'dags')).toMatchObject([
        { key: 'dags/__init__.py', sizeBytes: 0 },
      ])
      expect((await store.get(bucket, 'dags/__init__.py')).length).toBe(0)
    })

    it('lists and heads each object with its version, size and last-modified time', async () => {
      const { store, bucket } = ctx()
      const before = Date.now()
      const put = await store.put(bucket, 'requirements.txt', 'boto3\n')
      const [listed] = await store.list(bucket, '')
      // S3 keeps LastModified in whole seconds; a file system has finer times.
      const near = (date: Date | undefined) => Math.abs((date?.getTime() ?? 0) - before) < 120_000
      expect(near(listed?.lastModified)).toBe(true)

      const head = await store.head(bucket, 'requirements.txt')
      expect(head).toMatchObject({ key: 'requirements.txt', sizeBytes: 6 })
      expect(near(head.lastModified)).toBe(true)
      // The current version is one `get` serves this content for.
      expect((await store.get(bucket, 'requirements.txt', head.version)).toString()).toBe('boto3\n')
      for (const version of [put.version, listed?.version ?? '']) {
        expect((await store.head(bucket, 'requirements.txt', version)).sizeBytes).toBe(6)
      }

      await store.put(bucket, 'requirements.txt', 'boto3==1.35.0\n')
      const changed = await store.head(bucket, 'requirements.txt')
      expect(changed.version).not.toBe(head.version)
      expect(changed.sizeBytes).toBe(14)
      await expect(store.head(bucket, 'missing.txt')).rejects.toBeInstanceOf(ObjectNotFoundError)
      await expect(store.head(bucket, 'requirements.txt', 'f'.repeat(64))).rejects.toBeInstanceOf(
        ObjectNotFoundError,
      )
    })

    it('tells whether a bucket and a prefix exist', async () => {
      const { store, bucket } = ctx()
      expect(await store.bucketExists(bucket)).toBe(true)
      expect(await store.bucketExists(`no-such-${randomBytes(6).toString('hex')}`)).toBe(false)
      expect(await store.prefixExists(bucket, '')).toBe(true)
      expect(await store.prefixExists(bucket, 'dags')).toBe(false)
      await store.put(bucket, 'dags/sub/a.py', 'a')
      expect(await store.prefixExists(bucket, 'dags')).toBe(true)
      expect(await store.prefixExists(bucket, 'dags/sub/')).toBe(true)
      expect(await store.prefixExists(bucket, 'dag')).toBe(false)
      await store.delete(bucket, 'dags/sub/a.py')
      expect(await store.prefixExists(bucket, 'dags')).toBe(false)
    })

    it('ensureBucket is idempotent and keeps existing objects', async () => {
      const { store, bucket } = ctx()
      await store.put(bucket, 'keep.txt', 'k')
      await store.ensureBucket(bucket)
      await store.ensureBucket(bucket)
      expect(keysOf(await store.list(bucket, ''))).toEqual(['keep.txt'])
    })
  })
}
