/**
 * The runtime build's log file: the installer's whole output goes to
 * `<runtimeDir>/<key>.build.log`, and a failed build names it. `uv` is replaced by a small shell
 * script that behaves like it (creates the venv folder, prints uv's kind of lines, or fails);
 * the real uv builds real runtimes in the integration tests.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../observability/logger.js'
import { RuntimeBuildError, RuntimeManager } from './runtime-manager.js'

const VERSION = '3.3.2'
let root: string

/**
 * A stand-in for uv: `venv DIR` makes DIR/bin/airflow (which prints the version); `pip sync`
 * prints uv's summary and one ` + name==version` line per package, or fails when FAIL_SYNC=1.
 */
const FAKE_UV = `#!/bin/sh
if [ "$1" = venv ]; then
  dir="$4"; mkdir -p "$dir/bin"
  printf '#!/bin/sh\\necho ${VERSION}\\n' > "$dir/bin/airflow"; chmod +x "$dir/bin/airflow"
  echo "Using CPython 3.12.9"; echo "Creating virtual environment at: $dir"
  exit 0
fi
if [ "$FAIL_SYNC" = 1 ]; then
  echo "error: Failed to fetch: https://pypi.org/simple/apache-airflow/" >&2
  echo "  Caused by: dns error" >&2
  exit 2
fi
echo "Resolved 3 packages in 1ms" >&2
echo "Installed 3 packages in 2ms" >&2
for p in apache-airflow==${VERSION} pendulum==3.1.0 sqlalchemy==2.0.41; do echo " + $p" >&2; done
`

function manager(runtimeDir: string, failSync: boolean): RuntimeManager {
  return new RuntimeManager({
    runtimeDir,
    locksDir: path.join(root, 'locks'),
    python: '/usr/bin/python3.12-as-given',
    uv: path.join(root, 'uv'),
    hostPath: '/usr/bin:/bin',
    hostEnv: failSync ? { FAIL_SYNC: '1' } : {},
    logger: createLogger('silent'),
  })
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'airdock-runtime-'))
  await writeFile(path.join(root, 'uv'), FAKE_UV)
  await chmod(path.join(root, 'uv'), 0o755)
  await mkdir(path.join(root, 'locks', VERSION), { recursive: true })
  await writeFile(path.join(root, 'locks', VERSION, 'requirements.lock'), 'apache-airflow==3.3.2\n')
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('the runtime build log', () => {
  it('holds every installer line and step; the progress listener sees the same lines', async () => {
    const runtimes = manager(path.join(root, 'ok'), false)
    const seen: string[] = []
    const runtime = await runtimes.ensure(VERSION, (line) => seen.push(line))
    const logFile = runtimes.buildLogFile(VERSION)
    expect(logFile).toBe(path.join(root, 'ok', `${runtime.key}.build.log`))
    const lines = (await readFile(logFile, 'utf8')).trimEnd().split('\n')
    expect(lines[0]).toMatch(new RegExp(`^# Airflow ${VERSION} runtime ${runtime.key}, built `))
    expect(lines).toContain(
      `$ ${path.join(root, 'uv')} venv --python /usr/bin/python3.12-as-given ${runtime.dir}`,
    )
    expect(lines.filter((l) => l.startsWith(' + '))).toEqual([
      ` + apache-airflow==${VERSION}`,
      ' + pendulum==3.1.0',
      ' + sqlalchemy==2.0.41',
    ])
    expect(lines.at(-1)).toBe(VERSION)
    expect(seen).toEqual(lines.slice(1))
    expect(await runtimes.find(VERSION)).toEqual(runtime)
  })

  it('a failed build names its log, which holds the error; the tail is readable', async () => {
    const runtimes = manager(path.join(root, 'failing'), true)
    const error = await runtimes.ensure(VERSION).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(RuntimeBuildError)
    const logFile = runtimes.buildLogFile(VERSION)
    expect((error as Error).message).toMatch(/^uv pip failed \(exit 2\): error: Failed to fetch/)
    expect((error as Error).message).toContain(`(build log: ${logFile})`)
    const tail = await runtimes.buildLogTail(VERSION, 3)
    expect(tail[0]).toBe('error: Failed to fetch: https://pypi.org/simple/apache-airflow/')
    expect(tail[1]).toBe('  Caused by: dns error')
    expect(tail[2]).toMatch(/^# failed: uv pip failed \(exit 2\)/)
    expect(await runtimes.find(VERSION)).toBeUndefined()
  })

  it('without a build there is no tail', async () => {
    expect(await manager(path.join(root, 'never'), false).buildLogTail(VERSION, 5)).toEqual([])
  })
})
