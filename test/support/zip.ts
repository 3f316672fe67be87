/** Zip files for tests, written by Python's zipfile (it stores any entry name, `../` included). */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/**
 * @param entries - entry name → content
 * @param links - entry name → target, stored as symbolic-link entries (Unix mode 0120777)
 * @returns the zip's bytes
 */
export function zipOf(entries: Record<string, string>, links: Record<string, string> = {}): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'zip-'))
  try {
    const file = path.join(dir, 'archive.zip')
    execFileSync('python3', [
      '-c',
      [
        'import sys, json, zipfile',
        'with zipfile.ZipFile(sys.argv[1], "w") as z:',
        '    for n, c in json.loads(sys.argv[2]).items(): z.writestr(n, c)',
        '    for n, t in json.loads(sys.argv[3]).items():',
        '        i = zipfile.ZipInfo(n); i.external_attr = 0o120777 << 16; z.writestr(i, t)',
      ].join('\n'),
      file,
      JSON.stringify(entries),
      JSON.stringify(links),
    ])
    return readFileSync(file)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
