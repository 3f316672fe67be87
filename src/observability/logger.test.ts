/**
 * The logger's two formats: human-readable on a terminal, JSON otherwise — checked on a real
 * pseudo-terminal (`script` from util-linux gives the child one) and a real pipe — with secrets
 * redacted in both.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger, defaultLogFormat } from './logger.js'

const execFileAsync = promisify(execFile)
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const tsx = path.join(repoRoot, 'node_modules/.bin/tsx')

let dir: string
let script: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'airdock-logger-'))
  script = path.join(dir, 'log-once.ts')
  await writeFile(
    script,
    `import { createLogger } from ${JSON.stringify(path.join(repoRoot, 'src/observability/logger.ts'))}\n` +
      `createLogger('info').info({ password: 'hunter2', environment: 'demo' }, 'request handled')\n`,
  )
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('the console format', () => {
  it('is pretty on a terminal and JSON for a file or pipe', () => {
    expect(defaultLogFormat(undefined, true)).toBe('pretty')
    expect(defaultLogFormat(undefined, false)).toBe('json')
    expect(defaultLogFormat('/tmp/airdock.log', true)).toBe('json')
  })

  it('a process whose stdout is a terminal writes human-readable lines, secrets redacted', async () => {
    // `script -qec CMD /dev/null` runs CMD on a new pseudo-terminal and copies what it prints.
    const { stdout } = await execFileAsync('script', ['-qec', `${tsx} ${script}`, '/dev/null'], {
      cwd: repoRoot,
    })
    // Colours are ANSI escape sequences (ESC [ … m).
    const plain = stdout.replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '')
    expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request handled\r?\n/)
    expect(plain).toContain('environment: "demo"')
    expect(plain).toContain('password: "[redacted]"')
    expect(plain).not.toContain('hunter2')
    expect(plain).not.toContain('{"level"')
  })

  it('a process whose stdout is a pipe writes JSON lines, secrets redacted', async () => {
    const { stdout } = await execFileAsync(tsx, [script], { cwd: repoRoot })
    const line = JSON.parse(stdout.trim()) as Record<string, unknown>
    expect(line).toMatchObject({
      level: 30,
      msg: 'request handled',
      environment: 'demo',
      password: '[redacted]',
    })
  })

  it('a file asked for pretty lines gets them without colours', async () => {
    const file = path.join(dir, 'pretty.log')
    const log = createLogger('info', file, 'pretty')
    log.info({ token: 'abc', n: 1 }, 'hello')
    const text = await readFile(file, 'utf8')
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hello\n {4}token: "\[redacted\]"\n {4}n: 1\n$/,
    )
  })
})
