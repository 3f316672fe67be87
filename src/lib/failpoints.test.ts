import { spawnSync } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import {
  enableFailpoints,
  failpoint,
  FailpointError,
  FAILPOINT_NAMES,
  FailpointSettingError,
  parseFailpoints,
} from './failpoints.js'

const srcDir = fileURLToPath(new URL('..', import.meta.url))

afterEach(() => enableFailpoints(new Map()))

describe('parseFailpoints', () => {
  it('reads name=action pairs', () => {
    expect(parseFailpoints(' create.after-secrets=exit , delete.after-stop=throw,')).toEqual(
      new Map([
        ['create.after-secrets', 'exit'],
        ['delete.after-stop', 'throw'],
      ]),
    )
    expect(parseFailpoints('')).toEqual(new Map())
  })

  it('refuses an unknown name or action, listing every valid failpoint one per line', () => {
    for (const bad of [
      'create.nope=exit',
      'create.after-secrets=explode',
      'create.after-secrets',
    ]) {
      const err = (() => {
        try {
          parseFailpoints(bad)
        } catch (e) {
          return e
        }
      })()
      expect(err).toBeInstanceOf(FailpointSettingError)
      const lines = (err as Error).message.split('\n')
      expect(lines.slice(1)).toEqual([...FAILPOINT_NAMES])
    }
  })
})

describe('failpoint', () => {
  it('does nothing when unset, throws with `throw`', () => {
    expect(() => failpoint('create.after-runtime')).not.toThrow()
    enableFailpoints(parseFailpoints('create.after-runtime=throw,delete.after-stop=off'))
    expect(() => failpoint('create.after-runtime')).toThrow(FailpointError)
    expect(() => failpoint('delete.after-stop')).not.toThrow()
    expect(() => failpoint('create.after-secrets')).not.toThrow()
  })

  it('ends the process at once with `exit`, as SIGKILL does (nothing after it runs)', () => {
    const script = `
      import { enableFailpoints, failpoint, parseFailpoints } from ${JSON.stringify(path.join(srcDir, 'lib/failpoints.ts'))}
      process.on('exit', () => console.log('exit handler ran'))
      enableFailpoints(parseFailpoints('create.after-runtime=exit'))
      failpoint('create.after-runtime')
      console.log('after the failpoint')
    `
    const result = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
      },
    )
    expect(result.signal).toBe('SIGKILL')
    expect(result.stdout).toBe('')
  })

  it('is placed in the code once per name (a point without a step shows up here)', async () => {
    const files = (await readdir(srcDir, { recursive: true })).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('failpoints.ts'),
    )
    const placed: string[] = []
    for (const file of files) {
      const text = await readFile(path.join(srcDir, file), 'utf8')
      for (const match of text.matchAll(/failpoint\('([a-z.-]+)'\)/g)) placed.push(match[1]!)
    }
    expect(placed.sort()).toEqual([...FAILPOINT_NAMES].sort())
  })
})
