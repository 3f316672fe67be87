import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { zipOf } from '../../test/support/zip.js'
import { runCommand } from '../lib/run-command.js'
import { parseImportErrors } from '../reconciler/artifacts.js'
import { extractPluginsArchive, PluginsArchiveError } from './plugins-archive.js'
import { checkRequirements, constraintsFromLock, describeFailure } from './requirements-layer.js'
import { runStartupScript, StartupScriptError } from './startup-script.js'

let dir: string | undefined
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
  dir = undefined
})

async function scratch(): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), 'inputs-'))
  return dir
}

describe('requirements layer', () => {
  it('turns a hashed lock into name==version constraints', () => {
    const lock = [
      '# generated',
      'apache-airflow==3.3.2 \\',
      '    --hash=sha256:abc',
      '    # via -r requirements.in',
      'celery[redis]==5.6.1 \\',
      '    --hash=sha256:def',
      '',
    ].join('\n')
    expect(constraintsFromLock(lock)).toBe('apache-airflow==3.3.2\ncelery[redis]==5.6.1\n')
  })

  it("names the package and both versions when a line conflicts with Airflow's pins", () => {
    const output = [
      'Using CPython 3.12.1 interpreter at: /x/bin/python',
      '  × No solution found when resolving dependencies:',
      '  ╰─▶ Because you require pendulum==2.1.2 and pendulum==3.3.0, we can conclude that your requirements are unsatisfiable.',
    ].join('\n')
    const message = describeFailure(output, 1, 600_000)
    expect(message).toContain('pendulum==2.1.2')
    expect(message).toContain('conflicts with pendulum==3.3.0')
    expect(describeFailure('', null, 600_000)).toBe(
      'requirements.txt did not install within 600 s.',
    )
  })
})

describe('requirements.txt check', () => {
  it('accepts specifiers, markers, comments, index options and https references', () => {
    expect(() =>
      checkRequirements(
        [
          '# data tools',
          'pyjokes==0.8.3',
          'requests[socks]>=2.31 ; python_version >= "3.11"  # comment',
          '--extra-index-url https://pypi.example.com/simple',
          'mylib @ https://example.com/mylib-1.0-py3-none-any.whl',
          '',
        ].join('\n'),
        'log',
      ),
    ).not.toThrow()
  })

  it.each([
    ['-r /work/.airdock/master.key', 'the option -r'],
    ['--requirement=/etc/shadow', 'the option --requirement'],
    ['-c /etc/passwd', 'the option -c'],
    ['-e ./src', 'the option -e'],
    ['--find-links /tmp/wheels', 'the option --find-links'],
    ['./local-package', 'local paths'],
    ['/root/pkg.whl', 'local paths'],
    ['pkg @ file:///etc/passwd', 'local paths'],
    ['pkg @ ssh://git@host/x', 'http(s) URL'],
    ['--index-url file:///tmp/simple', 'http(s) URL'],
  ])('refuses %s before the installer runs', (line, reason) => {
    expect(() => checkRequirements(`pyjokes\n${line}\n`, 'log')).toThrow(
      new RegExp(`line 2 .*${reason.replace(/[()]/g, '\\$&')}`),
    )
  })
})

describe('plugins.zip', () => {
  it('extracts a good archive with its root as the plugins folder', async () => {
    const root = await scratch()
    const bytes = zipOf({
      'hello/__init__.py': '',
      'hello/operators.py': 'X = 1\n',
      'top.py': 'Y = 2\n',
    })
    const target = path.join(root, 'plugins')
    expect(await extractPluginsArchive(bytes, target)).toBe(3)
    expect(await readFile(path.join(target, 'hello/operators.py'), 'utf8')).toBe('X = 1\n')
    expect((await readdir(target)).sort()).toEqual(['hello', 'top.py'])
  })

  it.each([
    [{ '../evil.py': 'x' }, {}, "'../evil.py'"],
    [{ 'a/../../evil.py': 'x' }, {}, "'a/../../evil.py'"],
    [{ '/etc/evil.py': 'x' }, {}, 'absolute path'],
    [{ 'a\\..\\evil.py': 'x' }, {}, 'a\\..\\evil.py'],
    [{ 'ok.py': '' }, { 'link.py': '/etc/passwd' }, 'symbolic link'],
  ])('refuses %j (links %j) and writes nothing', async (entries, links, reason) => {
    const root = await scratch()
    const bytes = zipOf(entries, links)
    const target = path.join(root, 'deep', 'plugins')
    const error = await extractPluginsArchive(bytes, target).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PluginsArchiveError)
    expect((error as Error).message).toContain(reason)
    expect(existsSync(target)).toBe(false)
    expect(existsSync(path.join(root, 'evil.py'))).toBe(false)
    expect(existsSync(path.join(root, 'deep', 'evil.py'))).toBe(false)
  })

  it('refuses something that is not a zip', async () => {
    const root = await scratch()
    await expect(
      extractPluginsArchive(Buffer.from('not a zip'), path.join(root, 'p')),
    ).rejects.toThrow(PluginsArchiveError)
  })
})

describe('startup script', () => {
  const base = { PATH: '/usr/local/bin:/usr/bin:/bin', AIRFLOW_HOME: '/home/airflow' }

  it('returns what it exported, without reserved variables or plain assignments', async () => {
    const root = await scratch()
    const exported = await runStartupScript({
      script: [
        'export GREETING="hello $MWAA_AIRFLOW_COMPONENT"',
        'export AIRFLOW_HOME=/tmp/hijacked',
        'export AIRFLOW__CORE__DEFAULT_TASK_RETRIES=3',
        'NOT_EXPORTED=1',
        'echo done',
      ].join('\n'),
      env: { ...base, MWAA_AIRFLOW_COMPONENT: 'worker' },
      cwd: root,
      timeoutMs: 10_000,
      logFile: path.join(root, 'logs/worker.log'),
    })
    expect(exported).toEqual({
      GREETING: 'hello worker',
      AIRFLOW__CORE__DEFAULT_TASK_RETRIES: '3',
    })
    expect(await readFile(path.join(root, 'logs/worker.log'), 'utf8')).toBe('done\n')
  })

  it('fails with the exit code and last output, or after the time limit', async () => {
    const root = await scratch()
    const run = (script: string, timeoutMs: number) =>
      runStartupScript({
        script,
        env: base,
        cwd: root,
        timeoutMs,
        logFile: path.join(root, 'log'),
      }).catch((e: unknown) => e as StartupScriptError)
    const exited = await run('echo broken >&2\nexit 4\n', 10_000)
    expect(exited).toBeInstanceOf(StartupScriptError)
    expect((exited as Error).message).toBe(
      'The startup script exited with code 4. Last output: broken',
    )
    const started = Date.now()
    const slow = await run('echo sleeping\nsleep 30\n', 500)
    expect((slow as Error).message).toContain('did not finish within 1 s')
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})

describe('runCommand', () => {
  it('ends when the program exits, taking what it left running in the background along', async () => {
    const root = await scratch()
    const pidFile = path.join(root, 'bg.pid')
    const started = Date.now()
    const result = await runCommand('bash', ['-c', `sleep 30 & echo $! > ${pidFile}; echo ok`], {
      env: { PATH: '/usr/bin:/bin' },
      timeoutMs: 20_000,
    })
    expect(result).toMatchObject({ code: 0, timedOut: false })
    expect(result.stdout.toString()).toBe('ok\n')
    expect(Date.now() - started).toBeLessThan(10_000)
    const pid = Number(await readFile(pidFile, 'utf8'))
    await new Promise((r) => setTimeout(r, 200))
    // Gone, or dead and waiting for init to reap it (state Z).
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    expect(stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')).toBe(true)
  })
})

describe('DAG import check', () => {
  it('reads the JSON array after the warnings Airflow prints first', () => {
    const stdout = [
      '2026-11-21T20:24:46Z [warning  ] Could not import graphviz.',
      'Run `pip install graphviz` to attempt to install it. [py.warnings] category=UserWarning',
      '[{"filepath": "/dags/a.py", "error": "ModuleNotFoundError: x"}]',
    ].join('\n')
    expect(parseImportErrors(stdout)).toEqual([
      { filepath: '/dags/a.py', error: 'ModuleNotFoundError: x' },
    ])
    expect(parseImportErrors('[]\n')).toEqual([])
    expect(parseImportErrors('Traceback …')).toBeUndefined()
  })
})
