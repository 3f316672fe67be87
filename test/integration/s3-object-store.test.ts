import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3'
import { pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DagSync } from '../../src/storage/dag-sync.js'
import { runObjectStoreConformance } from '../../src/storage/object-store-conformance.js'
import { BucketNotFoundError, ObjectNotFoundError } from '../../src/storage/object-store.js'
import { S3ObjectStore } from '../../src/storage/s3-object-store.js'
import { startMotoServer } from '../support/moto-server.js'
import type { MotoServer } from '../support/moto-server.js'

let moto: MotoServer | undefined
let store: S3ObjectStore | undefined

beforeAll(async () => {
  moto = await startMotoServer()
  store = new S3ObjectStore({
    endpoint: moto.endpoint,
    region: 'us-east-1',
    accessKeyId: 'test',
    secretAccessKey: 'test',
    forcePathStyle: true,
  })
})

afterAll(async () => {
  store?.client.destroy()
  await moto?.stop()
})

function s3(): S3ObjectStore {
  if (store === undefined) throw new Error('moto server not started')
  return store
}

/** Creates a fresh versioned bucket, as MWAA requires of source buckets. */
async function createVersionedBucket(): Promise<string> {
  const bucket = `airdock-test-${randomBytes(6).toString('hex')}`
  await s3().client.send(new CreateBucketCommand({ Bucket: bucket }))
  await s3().client.send(
    new PutBucketVersioningCommand({
      Bucket: bucket,
      VersioningConfiguration: { Status: 'Enabled' },
    }),
  )
  return bucket
}

/** Deletes every version and delete marker, then the bucket. */
async function destroyBucket(bucket: string): Promise<void> {
  const client = s3().client
  for (;;) {
    // At most 1000 entries a page, and DeleteObjects takes at most 1000: repeat until empty.
    const listed = await client.send(new ListObjectVersionsCommand({ Bucket: bucket }))
    const objects = [...(listed.Versions ?? []), ...(listed.DeleteMarkers ?? [])]
      .slice(0, 1000)
      .map((v) => ({ Key: v.Key ?? '', VersionId: v.VersionId }))
    if (objects.length === 0) break
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects } }))
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }))
}

runObjectStoreConformance('S3ObjectStore conformance (moto server)', async () => {
  const bucket = await createVersionedBucket()
  return { store: s3(), bucket, cleanup: () => destroyBucket(bucket) }
})

describe('S3ObjectStore specifics (moto server)', () => {
  it('reads an older version by its VersionId on a versioned bucket', async () => {
    const bucket = await createVersionedBucket()
    try {
      const first = await s3().put(bucket, 'requirements.txt', 'a\n')
      const second = await s3().put(bucket, 'requirements.txt', 'b\n')
      expect(first.version).not.toBe(second.version)
      expect(first.version).not.toMatch(/^[0-9a-f]{32}$/) // a VersionId, not an ETag
      expect((await s3().get(bucket, 'requirements.txt', first.version)).toString()).toBe('a\n')
      expect((await s3().get(bucket, 'requirements.txt', second.version)).toString()).toBe('b\n')
    } finally {
      await destroyBucket(bucket)
    }
  })

  it('paginates listings beyond 1000 keys', async () => {
    const bucket = await createVersionedBucket()
    try {
      const keys = Array.from({ length: 1005 }, (_, i) => `dags/f${String(i).padStart(4, '0')}.py`)
      for (let i = 0; i < keys.length; i += 50) {
        await Promise.all(keys.slice(i, i + 50).map((key) => s3().put(bucket, key, key)))
      }
      const listed = await s3().list(bucket, 'dags')
      expect(listed.map((o) => o.key)).toEqual(keys)
    } finally {
      await destroyBucket(bucket)
    }
  })

  it('maps a missing bucket to BucketNotFoundError and ensureBucket creates it', async () => {
    const bucket = `airdock-test-${randomBytes(6).toString('hex')}`
    await expect(s3().list(bucket, '')).rejects.toBeInstanceOf(BucketNotFoundError)
    await s3().ensureBucket(bucket)
    await s3().ensureBucket(bucket)
    expect(await s3().list(bucket, '')).toEqual([])
    await destroyBucket(bucket)
  })

  it('reports an ObjectNotFoundError with the key and version', async () => {
    const bucket = await createVersionedBucket()
    try {
      await expect(s3().get(bucket, 'nope.txt', 'abc')).rejects.toBeInstanceOf(ObjectNotFoundError)
    } finally {
      await destroyBucket(bucket)
    }
  })
})

describe('DagSync from an S3 bucket (moto server)', () => {
  it('mirrors the dags prefix and refuses keys that escape the dags folder', async () => {
    const bucket = await createVersionedBucket()
    const root = await mkdtemp(join(tmpdir(), 'airdock-s3-dag-sync-'))
    const targetDir = join(root, 'env', 'dags')
    const lines: { msg: string; key?: string; level: number }[] = []
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => lines.push(JSON.parse(line) as (typeof lines)[number]) },
    )
    try {
      await s3().put(bucket, 'dags/etl.py', 'from airflow.sdk import dag\n')
      await s3().put(bucket, 'dags/sub/helpers.py', 'X = 1\n')
      await s3().put(bucket, 'dags/sub/', '') // a console "folder" object
      await s3().put(bucket, 'requirements.txt', 'boto3\n')
      // S3 accepts keys that would escape a folder; put them with the raw client.
      await s3().client.send(
        new PutObjectCommand({ Bucket: bucket, Key: 'dags/../escape.py', Body: 'evil' }),
      )
      await s3().client.send(
        new PutObjectCommand({ Bucket: bucket, Key: 'dags/sub/../../../escape2.py', Body: 'evil' }),
      )
      expect((await s3().list(bucket, 'dags')).map((o) => o.key)).toContain('dags/../escape.py')

      const sync = new DagSync({ store: s3(), bucket, prefix: 'dags', targetDir, logger })
      const result = await sync.syncOnce()
      expect(result).toEqual({
        written: ['dags/etl.py', 'dags/sub/helpers.py'],
        deleted: [],
        refused: ['dags/../escape.py', 'dags/sub/../../../escape2.py'],
        failed: [],
      })
      expect(await readFile(join(targetDir, 'etl.py'), 'utf8')).toBe(
        'from airflow.sdk import dag\n',
      )
      expect(await readFile(join(targetDir, 'sub', 'helpers.py'), 'utf8')).toBe('X = 1\n')
      for (const escaped of [
        join(root, 'env', 'escape.py'),
        join(root, 'escape.py'),
        join(root, 'escape2.py'),
        join(tmpdir(), 'escape2.py'),
      ]) {
        await expect(stat(escaped)).rejects.toThrow()
      }
      expect((await readdir(join(root, 'env'))).sort()).toEqual([
        '.dag-sync-manifest.json',
        '.dags.airdock-sync-tmp',
        'dags',
      ])
      const refusals = lines.filter((l) => l.msg === 'object refused: path escapes the dags folder')
      expect(refusals.map((l) => l.key).sort()).toEqual([
        'dags/../escape.py',
        'dags/sub/../../../escape2.py',
      ])

      // Change and delete in the bucket; the next pass follows.
      await s3().put(bucket, 'dags/etl.py', 'changed\n')
      await s3().delete(bucket, 'dags/sub/helpers.py')
      const second = await sync.syncOnce()
      expect(second).toMatchObject({ written: ['dags/etl.py'], deleted: ['dags/sub/helpers.py'] })
      expect(await readFile(join(targetDir, 'etl.py'), 'utf8')).toBe('changed\n')
      expect(await readdir(targetDir)).toEqual(['etl.py'])
    } finally {
      await rm(root, { recursive: true, force: true })
      await destroyBucket(bucket)
    }
  })
})
