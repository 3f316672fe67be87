import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadSettings } from '../config/settings.js'
import { FsObjectStore, sha256Hex } from '../storage/fs-object-store.js'
import { BucketNotFoundError } from '../storage/object-store.js'
import { bucketListing, formatListedObject } from './bucket-command.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const sha = (text: string) => sha256Hex(Buffer.from(text))

describe('airdock bucket ls', () => {
  let dataDir: string
  let store: FsObjectStore

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'airdock-bucket-ls-'))
    store = new FsObjectStore({ rootDir: join(dataDir, 'buckets') })
    await store.ensureBucket('my-bucket')
    await store.put('my-bucket', 'dags/etl.py', 'print(1)\n')
    await store.put('my-bucket', 'requirements.txt', 'pyjokes==0.8.3\n')
    const when = new Date('2026-01-02T03:04:05.000Z')
    for (const file of ['dags/etl.py', 'requirements.txt']) {
      await utimes(join(dataDir, 'buckets', 'my-bucket', file), when, when)
    }
  })
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  it('lists key, SHA-256 version, size and last-modified time, tab-separated, in key order', async () => {
    expect(await bucketListing(store, 'my-bucket')).toEqual([
      `dags/etl.py\t${sha('print(1)\n')}\t9\t2026-01-02T03:04:05.000Z`,
      `requirements.txt\t${sha('pyjokes==0.8.3\n')}\t15\t2026-01-02T03:04:05.000Z`,
    ])
    expect(await bucketListing(store, 'my-bucket', 'dags')).toEqual([
      `dags/etl.py\t${sha('print(1)\n')}\t9\t2026-01-02T03:04:05.000Z`,
    ])
    await expect(bucketListing(store, 'no-such-bucket')).rejects.toBeInstanceOf(BucketNotFoundError)
  })

  it('keeps a key with a tab on one line', () => {
    const line = formatListedObject({
      key: 'a\tb',
      version: 'v',
      sizeBytes: 1,
      lastModified: new Date(0),
    })
    expect(line.split('\t')).toEqual(['"a\\tb"', 'v', '1', '1970-01-01T00:00:00.000Z'])
  })

  it('runs as a command on the data dir the settings name', async () => {
    // A program with only these commands (as src/cli.ts registers them), run as a process.
    const harness = join(dataDir, 'harness.mts')
    await writeFile(
      harness,
      [
        `import { Command } from ${JSON.stringify(createRequire(import.meta.url).resolve('commander'))}`,
        `import { registerBucketCommands } from ${JSON.stringify(join(repoRoot, 'src/cli/bucket-command.ts'))}`,
        "const program = new Command('airdock')",
        'registerBucketCommands(program)',
        'await program.parseAsync(process.argv)',
        '',
      ].join('\n'),
    )
    const run = (...args: string[]) =>
      spawnSync(join(repoRoot, 'node_modules/.bin/tsx'), [harness, 'bucket', 'ls', ...args], {
        cwd: repoRoot,
        env: { PATH: loadSettings().hostPath, AIRDOCK_DATA_DIR: dataDir },
        encoding: 'utf8',
      })
    const listed = run('my-bucket', 'dags/')
    expect(listed.stderr).toBe('')
    expect(listed.status).toBe(0)
    expect(listed.stdout).toBe(`dags/etl.py\t${sha('print(1)\n')}\t9\t2026-01-02T03:04:05.000Z\n`)
    const missing = run('gone-bucket')
    expect(missing.status).toBe(1)
    expect(missing.stderr).toBe('airdock bucket ls: Bucket gone-bucket does not exist\n')
    expect(run('b').stderr).toContain('Invalid bucket "b": must be 3-63 characters long')
  })
})
