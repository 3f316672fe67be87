import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FsObjectStore } from './fs-object-store.js'
import { runObjectStoreConformance } from './object-store-conformance.js'
import {
  BucketNotFoundError,
  InvalidBucketNameError,
  InvalidObjectKeyError,
  ObjectNotFoundError,
  normalizePrefix,
  parseBucketArn,
} from './object-store.js'

runObjectStoreConformance('FsObjectStore conformance', async () => {
  const rootDir = await mkdtemp(join(tmpdir(), 'airdock-fs-store-'))
  const store = new FsObjectStore({ rootDir })
  await store.ensureBucket('conformance-bucket')
  return {
    store,
    bucket: 'conformance-bucket',
    cleanup: () => rm(rootDir, { recursive: true, force: true }),
  }
})

describe('FsObjectStore', () => {
  let rootDir: string
  let store: FsObjectStore
  const bucket = 'my-bucket'

  beforeEach(async () => {
    rootDir = await mkdtemp(join(tmpdir(), 'airdock-fs-store-'))
    store = new FsObjectStore({ rootDir })
    await store.ensureBucket(bucket)
  })
  afterEach(async () => {
    await rm(rootDir, { recursive: true, force: true })
  })

  it('maps a bucket to a folder and keys to relative paths', async () => {
    await store.put(bucket, 'dags/sub/etl.py', 'x = 1\n')
    expect((await stat(join(rootDir, bucket, 'dags', 'sub', 'etl.py'))).size).toBe(6)
    await writeFile(join(rootDir, bucket, 'dags', 'dropped.py'), 'y = 2\n')
    expect((await store.list(bucket, 'dags')).map((o) => o.key)).toEqual([
      'dags/dropped.py',
      'dags/sub/etl.py',
    ])
  })

  it('uses the lowercase hex SHA-256 of the content as the version', async () => {
    const content = 'import airflow\n'
    const sha = createHash('sha256').update(content).digest('hex')
    expect((await store.put(bucket, 'dags/a.py', content)).version).toBe(sha)
    expect((await store.list(bucket, 'dags'))[0]?.version).toBe(sha)
  })

  it('heads a file dropped in by hand with its SHA-256, size and modification time', async () => {
    const path = join(rootDir, bucket, 'requirements.txt')
    await writeFile(path, 'pyjokes==0.8.3\n')
    const head = await store.head(bucket, 'requirements.txt')
    expect(head).toEqual({
      key: 'requirements.txt',
      version: createHash('sha256').update('pyjokes==0.8.3\n').digest('hex'),
      sizeBytes: 15,
      lastModified: (await stat(path)).mtime,
    })
    await mkdir(join(rootDir, bucket, 'dags'))
    await expect(store.head(bucket, 'dags')).rejects.toBeInstanceOf(ObjectNotFoundError)
    await expect(store.head('no-such-bucket', 'a')).rejects.toBeInstanceOf(BucketNotFoundError)
    // An empty folder is a prefix of a folder bucket (S3 has no empty folders).
    expect(await store.prefixExists(bucket, 'dags')).toBe(true)
  })

  it('notices content changed behind its back (hash cache keyed by file signature)', async () => {
    await store.put(bucket, 'dags/a.py', 'one')
    const [before] = await store.list(bucket, 'dags')
    await writeFile(join(rootDir, bucket, 'dags', 'a.py'), 'two, longer')
    const [after] = await store.list(bucket, 'dags')
    expect(after?.version).not.toBe(before?.version)
    expect(after?.version).toBe(createHash('sha256').update('two, longer').digest('hex'))
  })

  it("reports a stale version with MWAA's message", async () => {
    const { version } = await store.put(bucket, 'requirements.txt', 'a\n')
    await store.put(bucket, 'requirements.txt', 'b\n')
    await expect(store.get(bucket, 'requirements.txt', version)).rejects.toThrow(
      `Unable to read version ${version} of file requirements.txt`,
    )
  })

  it.each([
    ['../escape.py', "'..' segment"],
    ['dags/../../escape.py', "'..' segment"],
    ['/etc/passwd', 'absolute'],
    ['dags\\win.py', 'backslash'],
    ['dags/nul\0.py', 'NUL'],
    ['dags//a.py', 'empty segment'],
    ['dags/./a.py', "'.' segment"],
    ['dags/', 'folder'],
    ['', 'empty'],
  ])('refuses the key %j (%s)', async (key, reason) => {
    await expect(store.put(bucket, key, 'x')).rejects.toThrow(InvalidObjectKeyError)
    await expect(store.put(bucket, key, 'x')).rejects.toThrow(reason)
    await expect(store.get(bucket, key)).rejects.toThrow(InvalidObjectKeyError)
    await expect(store.delete(bucket, key)).rejects.toThrow(InvalidObjectKeyError)
    expect(await readdir(rootDir)).toEqual(expect.arrayContaining([bucket]))
  })

  it('skips symlinks that leave the bucket, follows those that stay inside', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'airdock-outside-'))
    try {
      await writeFile(join(outside, 'secret.txt'), 'secret')
      await mkdir(join(rootDir, bucket, 'dags'), { recursive: true })
      await writeFile(join(rootDir, bucket, 'shared.py'), 'shared = 1\n')
      await symlink(join(outside, 'secret.txt'), join(rootDir, bucket, 'dags', 'secret.txt'))
      await symlink(outside, join(rootDir, bucket, 'dags', 'outside-dir'))
      await symlink(join(rootDir, bucket, 'shared.py'), join(rootDir, bucket, 'dags', 'shared.py'))
      await symlink('..', join(rootDir, bucket, 'dags', 'loop')) // a cycle inside the bucket

      const keys = (await store.list(bucket, 'dags')).map((o) => o.key)
      expect(keys).toContain('dags/shared.py')
      expect(keys).not.toContain('dags/secret.txt')
      expect(keys.some((k) => k.startsWith('dags/outside-dir/'))).toBe(false)
      await expect(store.get(bucket, 'dags/secret.txt')).rejects.toBeInstanceOf(ObjectNotFoundError)
      await expect(store.get(bucket, 'dags/outside-dir/secret.txt')).rejects.toBeInstanceOf(
        ObjectNotFoundError,
      )
      expect((await store.get(bucket, 'dags/shared.py')).toString()).toBe('shared = 1\n')
      await expect(store.put(bucket, 'dags/outside-dir/new.txt', 'x')).rejects.toThrow(
        InvalidObjectKeyError,
      )
      expect(await readdir(outside)).toEqual(['secret.txt'])
    } finally {
      await rm(outside, { recursive: true, force: true })
    }
  })

  it('writes atomically: no temporary file is left in the bucket', async () => {
    await store.put(bucket, 'dags/a.py', 'a')
    await store.put(bucket, 'dags/a.py', 'b')
    expect(await readdir(join(rootDir, bucket, 'dags'))).toEqual(['a.py'])
    expect(await readdir(join(rootDir, '.airdock-tmp'))).toEqual([])
  })

  it('removes folders left empty by a delete', async () => {
    await store.put(bucket, 'dags/sub/deeper/a.py', 'a')
    await store.delete(bucket, 'dags/sub/deeper/a.py')
    expect(await readdir(join(rootDir, bucket))).toEqual([])
  })

  it('throws BucketNotFoundError for a missing bucket', async () => {
    await expect(store.list('no-such-bucket', '')).rejects.toBeInstanceOf(BucketNotFoundError)
    await expect(store.get('no-such-bucket', 'a')).rejects.toBeInstanceOf(BucketNotFoundError)
  })

  it('refuses bucket names that could leave the buckets folder', async () => {
    for (const name of ['..', '.airdock-tmp', 'a/b', 'UPPER', 'a..b', 'x']) {
      await expect(store.ensureBucket(name)).rejects.toBeInstanceOf(InvalidBucketNameError)
    }
  })
})

describe('parseBucketArn', () => {
  it('returns the bucket name', () => {
    expect(parseBucketArn('arn:aws:s3:::my-bucket')).toBe('my-bucket')
    expect(parseBucketArn('arn:aws-cn:s3:::airflow.dags-1')).toBe('airflow.dags-1')
  })

  it.each([
    'my-bucket',
    'arn:aws:s3:::',
    'arn:aws:s3:::my-bucket/dags',
    'arn:aws:sqs:us-east-1:000000000000:queue',
    'arn:aws:s3:::..',
    'arn:aws:s3:::Bad_Name',
  ])('refuses %j', (arn) => {
    expect(() => parseBucketArn(arn)).toThrow(InvalidBucketNameError)
  })
})

describe('normalizePrefix', () => {
  it('treats a prefix as a folder', () => {
    expect(normalizePrefix('')).toBe('')
    expect(normalizePrefix('dags')).toBe('dags/')
    expect(normalizePrefix('dags/')).toBe('dags/')
  })
})
