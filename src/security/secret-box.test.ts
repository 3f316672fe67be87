import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SecretBox, SecretUnreadableError } from './secret-box.js'

let dir: string | undefined
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('SecretBox', () => {
  it('round-trips, keeps the plaintext out of the sealed form, and writes a 0600 key', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'box-'))
    const box = await SecretBox.openOrCreate(path.join(dir, 'master.key'))
    const sealed = box.sealJson({ fernetKey: 'very-secret-value' })
    expect(sealed).not.toContain('very-secret-value')
    expect(box.openJson(sealed)).toEqual({ fernetKey: 'very-secret-value' })
    expect((await stat(path.join(dir, 'master.key'))).mode & 0o777).toBe(0o600)
    const again = await SecretBox.openOrCreate(path.join(dir, 'master.key'))
    expect(again.openJson(sealed)).toEqual({ fernetKey: 'very-secret-value' })
    expect((await readFile(path.join(dir, 'master.key'), 'utf8')).length).toBeGreaterThan(40)
  })

  it('refuses to open with another master key or after tampering', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'box-'))
    const a = await SecretBox.openOrCreate(path.join(dir, 'a.key'))
    const b = await SecretBox.openOrCreate(path.join(dir, 'b.key'))
    const sealed = a.sealJson('x')
    expect(() => b.openJson(sealed)).toThrow(SecretUnreadableError)
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA')
    expect(() => a.openJson(tampered)).toThrow(SecretUnreadableError)
  })
})
