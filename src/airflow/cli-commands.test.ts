import { describe, expect, it } from 'vitest'
import {
  AIRFLOW3_CLI_COMMANDS,
  CliCommandRefusedError,
  MAX_CLI_COMMAND_LENGTH,
  parseCliCommand,
  type CliRefusalReason,
} from './cli-commands.js'

const V3 = '3.3.1'

/** Runs `fn` and returns the CliCommandRefusedError it throws (fails the test otherwise). */
function refusal(fn: () => unknown): CliCommandRefusedError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(CliCommandRefusedError)
    return e as CliCommandRefusedError
  }
  throw new Error('expected a CliCommandRefusedError')
}

describe('AIRFLOW3_CLI_COMMANDS', () => {
  it("holds MWAA's 47 Airflow 3 command paths", () => {
    expect(Object.keys(AIRFLOW3_CLI_COMMANDS)).toHaveLength(47)
    expect(AIRFLOW3_CLI_COMMANDS['dags show'].blockedOptions).toEqual(['-s', '--save', '--imgcat'])
  })

  it('is frozen, entries and option lists included', () => {
    expect(Object.isFrozen(AIRFLOW3_CLI_COMMANDS)).toBe(true)
    expect(Object.isFrozen(AIRFLOW3_CLI_COMMANDS['dags test'])).toBe(true)
    expect(Object.isFrozen(AIRFLOW3_CLI_COMMANDS['dags test'].blockedOptions)).toBe(true)
  })
})

describe('parseCliCommand: allowed commands', () => {
  it.each(Object.keys(AIRFLOW3_CLI_COMMANDS))('%s parses', (path) => {
    expect(parseCliCommand(path, V3)).toEqual(path.split(' '))
    expect(parseCliCommand(`${path} --help`, V3)).toEqual([...path.split(' '), '--help'])
  })

  it.each(['3.0.6', '3.2.1', '3.3.1', '3.3.2', '3', ' 3.3.1 '])('Airflow %j is served', (v) => {
    expect(parseCliCommand('dags list', v)).toEqual(['dags', 'list'])
  })
})

describe('parseCliCommand: splitting (shlex-like, no shell)', () => {
  it.each<[string, string[]]>([
    ['dags list', ['dags', 'list']],
    ['  dags \t list  ', ['dags', 'list']],
    ['variables set my_key "a value"', ['variables', 'set', 'my_key', 'a value']],
    ["variables set k 'a;b|c'", ['variables', 'set', 'k', 'a;b|c']],
    [`dags trigger d --conf '{"x": 1}'`, ['dags', 'trigger', 'd', '--conf', '{"x": 1}']],
    [`dags trigger my_dag --conf '{"a": 1}'`, ['dags', 'trigger', 'my_dag', '--conf', '{"a": 1}']],
    [`dags trigger d --conf "{\\"x\\": 1}"`, ['dags', 'trigger', 'd', '--conf', '{"x": 1}']],
    ["dags trigger d --conf='{}'", ['dags', 'trigger', 'd', '--conf={}']],
    ['variables set k "$HOME `id` $(id)"', ['variables', 'set', 'k', '$HOME `id` $(id)']],
    ["variables set k 'it'\\''s'", ['variables', 'set', 'k', "it's"]],
    ['variables set k "back\\\\slash"', ['variables', 'set', 'k', 'back\\slash']],
    ['variables set k "keep\\n"', ['variables', 'set', 'k', 'keep\\n']],
    ["variables set k 'no\\escape'", ['variables', 'set', 'k', 'no\\escape']],
    ['variables set k a\\;b\\ c', ['variables', 'set', 'k', 'a;b c']],
    ['variables set k ab"c d"\'e\'', ['variables', 'set', 'k', 'abc de']],
    ["variables set k ''", ['variables', 'set', 'k', '']],
    ['variables set k ""', ['variables', 'set', 'k', '']],
    ["tasks clear d -t 'extract_.*' -y", ['tasks', 'clear', 'd', '-t', 'extract_.*', '-y']],
    ['variables set k "tab\tinside"', ['variables', 'set', 'k', 'tab\tinside']],
    ['variables set k üñï©ødé=%^,:@+/.', ['variables', 'set', 'k', 'üñï©ødé=%^,:@+/.']],
    ['dags list -o json', ['dags', 'list', '-o', 'json']],
    ['dags list-runs d -s 2024-01-01', ['dags', 'list-runs', 'd', '-s', '2024-01-01']],
    ['dags show d -v', ['dags', 'show', 'd', '-v']],
    [
      'dags test d 2024-01-01 -c \'{"a": 1}\'',
      ['dags', 'test', 'd', '2024-01-01', '-c', '{"a": 1}'],
    ],
    [
      'dags trigger d --conf \'{"save": "--save"}\'',
      ['dags', 'trigger', 'd', '--conf', '{"save": "--save"}'],
    ],
  ])('%j', (text, argv) => {
    expect(parseCliCommand(text, V3)).toEqual(argv)
  })

  it(`accepts ${MAX_CLI_COMMAND_LENGTH} characters and refuses one more`, () => {
    const prefix = 'variables set k '
    const text = prefix + 'a'.repeat(MAX_CLI_COMMAND_LENGTH - prefix.length)
    expect(text).toHaveLength(MAX_CLI_COMMAND_LENGTH)
    expect(parseCliCommand(text, V3)[3]).toHaveLength(MAX_CLI_COMMAND_LENGTH - prefix.length)
    const e = refusal(() => parseCliCommand(`${text}a`, V3))
    expect(e.reason).toBe('too-long')
    expect(e.message).toContain('4097 characters')
  })
})

describe('parseCliCommand: refusals', () => {
  it.each<[string, CliRefusalReason, string]>([
    // Not in the Airflow 3 allow-list.
    ['db reset', 'command-not-allowed', '"db reset"'],
    ['db reset -y', 'command-not-allowed', '"db reset"'],
    ['db migrate', 'command-not-allowed', '"db migrate"'],
    ['db init', 'command-not-allowed', '"db init"'],
    ['db shell', 'command-not-allowed', '"db shell"'],
    [
      'users create -u admin -p secret -r Admin -e a@b.c -f A -l B',
      'command-not-allowed',
      '"users create"',
    ],
    ['pools list', 'command-not-allowed', '"pools list"'],
    ['pools set p 1 d', 'command-not-allowed', '"pools set"'],
    ['connections list', 'command-not-allowed', '"connections list"'],
    ['connections export /tmp/c.json', 'command-not-allowed', '"connections export"'],
    ['variables export /tmp/v.json', 'command-not-allowed', '"variables export"'],
    ['scheduler', 'command-not-allowed', '"scheduler"'],
    ['scheduler -D', 'command-not-allowed', '"scheduler"'],
    ['celery worker', 'command-not-allowed', '"celery worker"'],
    ['api-server', 'command-not-allowed', '"api-server"'],
    ['webserver', 'command-not-allowed', '"webserver"'],
    ['standalone', 'command-not-allowed', '"standalone"'],
    ['rotate-fernet-key', 'command-not-allowed', '"rotate-fernet-key"'],
    ['config list', 'command-not-allowed', '"config list"'],
    ['roles delete r', 'command-not-allowed', '"roles delete"'],
    ['dags show-dependencies', 'command-not-allowed', '"dags show-dependencies"'],
    ['dags', 'command-not-allowed', '"dags"'],
    ['dags -h', 'command-not-allowed', '"dags"'],
    ['--help', 'command-not-allowed', '"--help"'],
    ['airflow dags list', 'command-not-allowed', 'without the `airflow` prefix'],
    ['DAGS LIST', 'command-not-allowed', '"DAGS LIST"'],
    ['constructor', 'command-not-allowed', '"constructor"'],
    ['__proto__', 'command-not-allowed', '"__proto__"'],
    ['toString', 'command-not-allowed', '"toString"'],
    ["''", 'command-not-allowed', '""'],
    // Shell syntax: there is no shell, so unquoted metacharacters are refused.
    ['dags list; touch /tmp/x', 'metacharacter', '";" at offset 9'],
    ['dags list && id', 'metacharacter', '"&"'],
    ['dags list | cat', 'metacharacter', '"|"'],
    ['dags list `id`', 'metacharacter', '"`"'],
    ['dags list $(id)', 'metacharacter', '"$"'],
    ['variables get $HOME', 'metacharacter', '"$"'],
    ['variables get ${HOME}', 'metacharacter', '"$"'],
    ['dags list > /tmp/out', 'metacharacter', '">"'],
    ['variables set k v < /etc/passwd', 'metacharacter', '"<"'],
    ['dags list &', 'metacharacter', '"&"'],
    ['dags list (x)', 'metacharacter', '"("'],
    ['tasks clear d -t extract_*', 'metacharacter', '"*"'],
    ['variables get k?', 'metacharacter', '"?"'],
    ['variables get [k]', 'metacharacter', '"["'],
    ['dags trigger d --conf {}', 'metacharacter', '"{"'],
    ['variables get ~/k', 'metacharacter', '"~"'],
    ['variables get !!', 'metacharacter', '"!"'],
    ['dags list # comment', 'metacharacter', '"#"'],
    // Control characters, including a newline-separated second command.
    ['dags list\ntouch /tmp/x', 'control-character', 'U+000A at offset 9'],
    ['dags list\n', 'control-character', 'U+000A'],
    ['dags list\r\n', 'control-character', 'U+000D'],
    ['dags list\0', 'control-character', 'U+0000'],
    ["variables set k 'a\nb'", 'control-character', 'U+000A'],
    ['dags list\x1b[2J', 'control-character', 'U+001B'],
    ['dags list\x7f', 'control-character', 'U+007F'],
    ['dags list\u0085', 'control-character', 'U+0085'],
    ['dags list\u2028id', 'control-character', 'U+2028'],
    // Quoting errors.
    ["variables set k 'a value", 'unbalanced-quote', 'single quote at offset 16'],
    ['variables set k "a value', 'unbalanced-quote', 'double quote at offset 16'],
    ['variables set k "a\\"', 'unbalanced-quote', 'double quote'],
    ["variables set k 'a'b'", 'unbalanced-quote', 'single quote at offset 20'],
    ['variables set k a\\', 'trailing-backslash', 'backslash'],
    // Empty.
    ['', 'empty', 'empty'],
    ['   \t ', 'empty', 'empty'],
    // Blocked options of allowed commands (also abbreviated, `=`-joined or clustered).
    ['dags show d --save out.png', 'option-blocked', '"dags show"'],
    ['dags show d --save=out.png', 'option-blocked', '(--save)'],
    ['dags show d --sav out.png', 'option-blocked', '(--save)'],
    ['dags show d --s out.png', 'option-blocked', '(--save)'],
    ['dags show d -s out.png', 'option-blocked', '(-s)'],
    ['dags show d -sout.png', 'option-blocked', '(-s)'],
    ['dags show d -vs out.png', 'option-blocked', '(-s)'],
    ['dags show d --imgcat', 'option-blocked', '(--imgcat)'],
    ['dags show d --img', 'option-blocked', '(--imgcat)'],
    ['dags show d -- --save x', 'option-blocked', '(--save)'],
    ['dags test d --save-dagrun out.png', 'option-blocked', '"dags test"'],
    ['dags test d --save-d=out.png', 'option-blocked', '(--save-dagrun)'],
    ['dags test d 2024-01-01 --show-dagrun', 'option-blocked', '(--show-dagrun)'],
    ['dags test d --show', 'option-blocked', '(--show-dagrun)'],
    ['dags test d --imgcat-dagrun', 'option-blocked', '(--imgcat-dagrun)'],
    ['dags test d --imgcat', 'option-blocked', '(--imgcat-dagrun)'],
  ])('%j is refused (%s)', (text, reason, fragment) => {
    const e = refusal(() => parseCliCommand(text, V3))
    expect(e.reason).toBe(reason)
    expect(e.message).toContain(fragment)
    expect(e.message).toMatch(/^CLI command ".*" refused: /s)
  })

  it.each(['2.11.0', '2.10.3', '1.10.12', '4.0.0', 'latest', ''])(
    'Airflow %j is refused whatever the command',
    (v) => {
      const e = refusal(() => parseCliCommand('dags list', v))
      expect(e.reason).toBe('unsupported-version')
      expect(e.message).toContain(`Airflow ${v} is not supported by the CLI endpoint`)
      expect(e.command).toBe('dags list')
    },
  )

  it('the error is an Error carrying the command and a readable message', () => {
    const e = refusal(() => parseCliCommand('db reset -y', V3))
    expect(e).toBeInstanceOf(Error)
    expect(e.name).toBe('CliCommandRefusedError')
    expect(e.command).toBe('db reset')
    expect(e.message).toBe(
      `CLI command "db reset" refused: not in MWAA's allow-list of Airflow 3 CLI commands`,
    )
  })

  it('long refused texts are shortened in the message and control characters escaped', () => {
    const e = refusal(() => parseCliCommand(`dags list ${'x'.repeat(200)};`, V3))
    expect(e.command).toHaveLength(80)
    expect(e.command.endsWith('...')).toBe(true)
    const n = refusal(() => parseCliCommand('dags list\nid', V3))
    expect(n.message).toContain('"dags list\\nid"')
    expect(n.message).not.toContain('\n')
  })
})
