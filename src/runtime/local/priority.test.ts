import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import type { ComponentSpec } from '../driver.js'
import { prioritizedCommand, setAutogroupNiceness } from './priority.js'

const spec: ComponentSpec = {
  name: 'a',
  component: 'a',
  command: process.execPath,
  args: ['-e', 'x y'],
  env: {},
  cwd: '/',
  logFile: '/tmp/a.log',
  stopGracePeriodMs: 0,
}

describe('prioritizedCommand', () => {
  it('runs a spec without niceness as it is', () => {
    expect(prioritizedCommand(spec)).toEqual({
      command: process.execPath,
      args: ['-e', 'x y'],
      setAfterSpawn: 0,
    })
    expect(prioritizedCommand({ ...spec, niceness: 0 }).command).toBe(process.execPath)
  })

  it('starts a niced spec through nice, arguments untouched, and the command runs niced', () => {
    const run = prioritizedCommand({
      ...spec,
      args: ['-p', 'require("os").getPriority()'],
      niceness: 9,
    })
    expect(run.args).toEqual([
      '-n',
      '9',
      '--',
      process.execPath,
      '-p',
      'require("os").getPriority()',
    ])
    const out = spawnSync(run.command, run.args, { encoding: 'utf8' })
    expect(out.stdout.trim()).toBe('9')
  })

  it('throws for a niced command that is not an executable file', () => {
    expect(() => prioritizedCommand({ ...spec, command: '/no/such/program', niceness: 9 })).toThrow(
      /ENOENT/,
    )
  })
})

describe('setAutogroupNiceness', () => {
  it('reports a process that is gone', () => {
    const done = spawnSync(process.execPath, ['-e', '0'])
    expect(setAutogroupNiceness(done.pid, 5)).toBe('gone')
  })
})
