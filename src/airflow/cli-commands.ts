/**
 * The command check of MWAA's `POST https://{WebServerHostname}/aws_mwaa/cli` endpoint.
 *
 * The request body is an Airflow CLI command without the `airflow` prefix (`dags list`,
 * `variables set k "a value"`). MWAA runs only an allow-listed set of commands and refuses the
 * rest (observed as HTTP 500; reference `mwaa-api-and-behaviour.md` §5 "CLI token and web login
 * flows"). Here the body is split into an argv WITHOUT a shell (POSIX `shlex`-like quoting), so
 * quoted shell metacharacters are plain data; unquoted ones are refused rather than guessed at,
 * because a caller who writes `dags list; id` expects a shell that does not exist.
 *
 * Only Airflow 3 is served: the allow-list is MWAA's table for Airflow v3 (3.0.6 / 3.2.1 /
 * 3.3.1); option names were checked against Airflow 3.3.2's `airflow/cli/cli_config.py`.
 */

/** Longest accepted command text, in UTF-16 code units (`string.length`). */
export const MAX_CLI_COMMAND_LENGTH = 4096

/** Documentation entry of one allowed command path. */
interface CliCommandInfo {
  /** Free-text remarks for documentation (limitations, Airflow 3.3 differences). */
  readonly notes?: string
  /**
   * Options of this command that are refused even though the command is allowed: long forms
   * (`--save`, also refused when abbreviated, e.g. `--sav`, or written `--save=x`) and short
   * forms (`-s`, also refused inside a cluster such as `-vs`).
   */
  readonly blockedOptions?: readonly string[]
}

/** Freezes a command table and its entries so consumers cannot alter the allow-list. */
function freezeTable<T extends Record<string, CliCommandInfo>>(table: T): Readonly<T> {
  for (const info of Object.values(table)) {
    if (info.blockedOptions) Object.freeze(info.blockedOptions)
    Object.freeze(info)
  }
  return Object.freeze(table)
}

const FAB_ROLES_NOTE =
  'Provided by the FAB auth manager (apache-airflow-providers-fab); present only when it is the configured auth manager.'

/**
 * MWAA's allow-list of Airflow CLI commands for Airflow 3, keyed by command path (one word for
 * top-level commands such as `version`, two words for group commands such as `dags list`),
 * each with optional notes and refused options. Any command path not listed is refused.
 *
 * Source: Amazon MWAA User Guide, "Apache Airflow CLI command reference", table for Apache
 * Airflow v3 (3.0.6, 3.2.1, 3.3.1)
 * (https://docs.aws.amazon.com/mwaa/latest/userguide/airflow-cli-command-reference.html),
 * summarised in reference `mwaa-api-and-behaviour.md` §5. MWAA's historical blocked list adds
 * `dags show --save` and `dags test --save-dagrun` / `--show-dagrun`; the `--imgcat` options
 * (they run the iTerm `imgcat` tool) are refused here as well.
 */
export const AIRFLOW3_CLI_COMMANDS = freezeTable({
  'assets details': {},
  'assets list': {},
  'assets materialize': { notes: 'Triggers the DAG that produces the asset.' },
  'backfill create': { notes: 'Creates a backfill that the scheduler runs.' },
  'cheat-sheet': {},
  'connections add': {},
  'connections delete': {},
  'dags delete': { notes: 'Deletes all metadata-database records of the DAG.' },
  'dags list': {},
  'dags list-jobs': {},
  'dags list-import-errors': {},
  'dags list-runs': {},
  'dags next-execution': {},
  'dags pause': {},
  'dags report': {},
  'dags reserialize': {},
  'dags show': {
    notes:
      'Prints the DOT graph; `-s/--save` (writes a file) and `--imgcat` (runs imgcat) are refused.',
    blockedOptions: ['-s', '--save', '--imgcat'],
  },
  'dags state': {},
  'dags test': {
    notes: '`--save-dagrun` (writes a file), `--show-dagrun` and `--imgcat-dagrun` are refused.',
    blockedOptions: ['--save-dagrun', '--show-dagrun', '--imgcat-dagrun'],
  },
  'dags trigger': {},
  'dags unpause': {},
  'db clean': { notes: 'Purges old metadata-database rows (archives them unless --skip-archive).' },
  'providers behaviours': {},
  'providers get': {},
  'providers hooks': {},
  'providers links': {},
  'providers list': {},
  'providers notifications': {},
  'providers secrets': {},
  'providers triggerer': {
    notes:
      'Listed by MWAA; Airflow 3.3 names the command `providers triggers`, so Airflow answers with a usage error.',
  },
  'providers widgets': {},
  'roles add-perms': { notes: FAB_ROLES_NOTE },
  'roles del-perms': { notes: FAB_ROLES_NOTE },
  'roles create': { notes: FAB_ROLES_NOTE },
  'roles list': { notes: FAB_ROLES_NOTE },
  'tasks clear': {},
  'tasks failed-deps': {},
  'tasks list': {},
  'tasks render': {},
  'tasks state': {},
  'tasks states-for-dag-run': {},
  'tasks test': {},
  'variables delete': {},
  'variables get': {},
  'variables set': {},
  'variables list': {},
  version: {},
} satisfies Record<string, CliCommandInfo>)

/** A command path of {@link AIRFLOW3_CLI_COMMANDS}, e.g. `'dags list'` or `'version'`. */
type Airflow3CliCommand = keyof typeof AIRFLOW3_CLI_COMMANDS

/**
 * Why a CLI command was refused:
 * - `unsupported-version`: the environment's Airflow major is not 3;
 * - `empty`, `too-long`, `control-character`: the text itself;
 * - `metacharacter`, `unbalanced-quote`, `trailing-backslash`: the quoting;
 * - `command-not-allowed`: the command path is not in {@link AIRFLOW3_CLI_COMMANDS};
 * - `option-blocked`: an option in the command's `blockedOptions` was used.
 */
export type CliRefusalReason =
  | 'unsupported-version'
  | 'empty'
  | 'too-long'
  | 'control-character'
  | 'metacharacter'
  | 'unbalanced-quote'
  | 'trailing-backslash'
  | 'command-not-allowed'
  | 'option-blocked'

/**
 * Thrown by {@link parseCliCommand} when a command must not run. `message` says why and names
 * the command (its path such as `db reset` when known, else an excerpt of the text); `reason`
 * is a machine-readable code for the HTTP layer (MWAA answers refused commands with HTTP 500).
 */
export class CliCommandRefusedError extends Error {
  /** Machine-readable cause. */
  readonly reason: CliRefusalReason
  /** Command path (`db reset`) or text excerpt the refusal is about. */
  readonly command: string

  /**
   * @param reason - machine-readable cause
   * @param command - command path or text excerpt, quoted in the message
   * @param detail - human-readable explanation, appended to the message
   */
  constructor(reason: CliRefusalReason, command: string, detail: string) {
    super(`CLI command ${JSON.stringify(command)} refused: ${detail}`)
    this.name = 'CliCommandRefusedError'
    this.reason = reason
    this.command = command
  }
}

/** Characters refused outside quotes: shell operators, expansions, globs, comments, history. */
const SHELL_METACHARACTERS = new Set(';|&$`()<>*?[]{}~!#')

/**
 * Offset of the first control character (C0, DEL, C1) other than tab, or Unicode line/paragraph
 * separator, in `text`; -1 when there is none.
 */
function forbiddenCharacterOffset(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code === 0x09) continue
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029) {
      return i
    }
  }
  return -1
}

/** Short excerpt of the text for messages (`JSON.stringify` escapes anything unprintable). */
function excerpt(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

/**
 * Splits the text into words like Python's `shlex.split` (POSIX mode), without any shell:
 * space and tab separate words; `'...'` is literal; inside `"..."` a backslash escapes only
 * `"` and `\` (other backslashes, `$` and backquotes stay literal, nothing is expanded);
 * outside quotes a backslash makes the next character literal. Adjacent parts join into one
 * word and `''` is an empty word. Unquoted shell metacharacters are refused.
 */
function splitWords(text: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let i = 0
  while (i < text.length) {
    const c = text.charAt(i)
    if (c === ' ' || c === '\t') {
      if (inWord) words.push(word)
      word = ''
      inWord = false
      i++
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) {
        throw new CliCommandRefusedError(
          'unbalanced-quote',
          excerpt(text),
          `single quote at offset ${i} is never closed`,
        )
      }
      word += text.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      const start = i
      i++
      for (;;) {
        if (i >= text.length) {
          throw new CliCommandRefusedError(
            'unbalanced-quote',
            excerpt(text),
            `double quote at offset ${start} is never closed`,
          )
        }
        const d = text.charAt(i)
        if (d === '"') break
        if (d === '\\' && (text.charAt(i + 1) === '"' || text.charAt(i + 1) === '\\')) {
          word += text.charAt(i + 1)
          i += 2
        } else {
          word += d
          i++
        }
      }
      inWord = true
      i++
    } else if (c === '\\') {
      if (i + 1 >= text.length) {
        throw new CliCommandRefusedError(
          'trailing-backslash',
          excerpt(text),
          'the text ends with a backslash that escapes nothing',
        )
      }
      word += text.charAt(i + 1)
      inWord = true
      i += 2
    } else if (SHELL_METACHARACTERS.has(c)) {
      throw new CliCommandRefusedError(
        'metacharacter',
        excerpt(text),
        `unquoted shell metacharacter ${JSON.stringify(c)} at offset ${i}; the command runs ` +
          `without a shell (one Airflow command, no pipes, redirections, expansions or globs), ` +
          `so quote it ('...') if it is meant literally`,
      )
    } else {
      word += c
      inWord = true
      i++
    }
  }
  if (inWord) words.push(word)
  return words
}

/** The entry of `blocked` that `token` selects as Python's argparse parses it, or undefined. */
function usesBlockedOption(token: string, blocked: readonly string[]): string | undefined {
  if (token.startsWith('--')) {
    // argparse accepts `--opt=value` and unambiguous abbreviations (allow_abbrev is on).
    const name = token.split('=', 1)[0] ?? token
    if (name === '--') return undefined
    return blocked.find((b) => b.startsWith('--') && b.startsWith(name))
  }
  if (token.startsWith('-') && token.length > 1) {
    // Short options cluster (`-vs out.png` is `-v -s out.png`); be conservative and refuse the
    // token when any of its letters is a blocked short option.
    const letters = token.slice(1)
    return blocked.find((b) => /^-[^-]$/.test(b) && letters.includes(b.charAt(1)))
  }
  return undefined
}

/** Major version number of an Airflow version string (`3.3.1` → 3), or undefined. */
function airflowMajor(airflowVersion: string): number | undefined {
  const m = /^(\d+)(?:\.\d+)*$/.exec(airflowVersion.trim())
  return m?.[1] === undefined ? undefined : Number(m[1])
}

/**
 * Checks and splits the body of MWAA's `/aws_mwaa/cli` endpoint into the argv to run after
 * `airflow` (never through a shell).
 *
 * @param text - the command without the `airflow` prefix, e.g. `dags trigger d --conf '{"a": 1}'`
 * @param airflowVersion - the environment's Airflow version, e.g. `3.3.1`; only major 3 is served
 * @returns the argv, e.g. `['dags', 'trigger', 'd', '--conf', '{"a": 1}']`; its first one or
 *   two elements are a command path of {@link AIRFLOW3_CLI_COMMANDS}
 * @throws CliCommandRefusedError when the Airflow major is not 3 ("Airflow <v> is not supported
 *   by the CLI endpoint"); the text is empty or longer than {@link MAX_CLI_COMMAND_LENGTH};
 *   it contains a NUL or other control character (newlines included; tab is allowed); an
 *   unquoted shell metacharacter (`; | & $ \` ( ) < > * ? [ ] { } ~ ! #`); an unclosed quote
 *   or a trailing backslash; the command path is not in MWAA's Airflow 3 allow-list; or a
 *   blocked option is used (`dags show -s/--save/--imgcat`, `dags test --save-dagrun/
 *   --show-dagrun/--imgcat-dagrun`).
 *
 * Source: MWAA User Guide "Apache Airflow CLI command reference" (v3.0.6/3.2.1/3.3.1) and
 * "Accessing the Apache Airflow CLI" (reference `mwaa-api-and-behaviour.md` §5).
 */
export function parseCliCommand(text: string, airflowVersion: string): string[] {
  const major = airflowMajor(airflowVersion)
  if (major !== 3) {
    throw new CliCommandRefusedError(
      'unsupported-version',
      excerpt(text),
      `Airflow ${airflowVersion} is not supported by the CLI endpoint (only Airflow 3 is served)`,
    )
  }
  if (text.length > MAX_CLI_COMMAND_LENGTH) {
    throw new CliCommandRefusedError(
      'too-long',
      excerpt(text),
      `the command is ${text.length} characters long; at most ${MAX_CLI_COMMAND_LENGTH} are accepted`,
    )
  }
  const bad = forbiddenCharacterOffset(text)
  if (bad >= 0) {
    const code = text.charCodeAt(bad).toString(16).toUpperCase().padStart(4, '0')
    throw new CliCommandRefusedError(
      'control-character',
      excerpt(text),
      `control character U+${code} at offset ${bad}; send exactly one command on one line`,
    )
  }
  const argv = splitWords(text)
  const first = argv[0]
  if (first === undefined) {
    throw new CliCommandRefusedError('empty', excerpt(text), 'the command is empty')
  }

  const second = argv[1]
  let path: string | undefined
  if (Object.hasOwn(AIRFLOW3_CLI_COMMANDS, first)) path = first
  else if (second !== undefined && Object.hasOwn(AIRFLOW3_CLI_COMMANDS, `${first} ${second}`)) {
    path = `${first} ${second}`
  }
  if (path === undefined) {
    const named = second !== undefined && !second.startsWith('-') ? `${first} ${second}` : first
    const hint = first === 'airflow' ? ' (send the command without the `airflow` prefix)' : ''
    throw new CliCommandRefusedError(
      'command-not-allowed',
      named,
      `not in MWAA's allow-list of Airflow 3 CLI commands${hint}`,
    )
  }

  const info: CliCommandInfo = AIRFLOW3_CLI_COMMANDS[path as Airflow3CliCommand]
  const blocked = info.blockedOptions
  if (blocked) {
    for (const token of argv.slice(path.split(' ').length)) {
      const option = usesBlockedOption(token, blocked)
      if (option !== undefined) {
        throw new CliCommandRefusedError(
          'option-blocked',
          path,
          `option ${JSON.stringify(token)} (${option}) is not allowed by the CLI endpoint`,
        )
      }
    }
  }
  return argv
}
