/** Executable lookup: the project's own tools first, then PATH in order, on real files. */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { findExecutable } from './find-executable.js'

let root: string
let tools: string
let bin1: string
let bin2: string

async function executable(file: string, mode = 0o755): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, '#!/bin/sh\n')
  await chmod(file, mode)
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'airdock-find-'))
  tools = path.join(root, '.tools')
  bin1 = path.join(root, 'bin1')
  bin2 = path.join(root, 'bin2')
  await executable(path.join(tools, 'uv', 'bin', 'uv'))
  await executable(path.join(bin1, 'uv'))
  await executable(path.join(bin1, 'notexec'), 0o644)
  await executable(path.join(bin2, 'notexec'))
  await executable(path.join(bin2, 'redis-server'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('findExecutable', () => {
  it('prefers the tool make setup installed in the project over PATH', () => {
    expect(findExecutable('uv', `${bin1}:${bin2}`, tools)).toBe(path.join(tools, 'uv/bin/uv'))
  })

  it('falls back to PATH, in order, skipping files that are not executable', () => {
    expect(findExecutable('uv', `${bin1}:${bin2}`, path.join(root, 'no-tools'))).toBe(
      path.join(bin1, 'uv'),
    )
    expect(findExecutable('notexec', `${bin1}:${bin2}`, tools)).toBe(path.join(bin2, 'notexec'))
    expect(findExecutable('redis-server', `::${bin2}`, tools)).toBe(path.join(bin2, 'redis-server'))
  })

  it('takes a name with a slash as a path, and answers undefined when nothing matches', () => {
    expect(findExecutable('./x/uv', bin1, tools)).toBe(path.resolve('./x/uv'))
    expect(findExecutable('nope', `${bin1}:${bin2}`, tools)).toBeUndefined()
  })
})
