/**
 * The control plane's logger: pino, with secrets redacted by key name (style: constant message,
 * variables in fields). JSON lines — but on a terminal (`npm start` in a shell), human-readable
 * lines through pino-pretty (`19:28:03.123 INFO (api): request handled` and the fields below).
 * Redaction happens before either format, so both hold the same `[redacted]` values.
 */
import { pino, type DestinationStream, type Logger } from 'pino'
import pretty from 'pino-pretty'

export type { Logger }

/** Field names whose values never reach a log line. */
export const REDACTED_KEYS = [
  'password',
  'fernetKey',
  'jwtSecret',
  'apiSecretKey',
  'secretAccessKey',
  'authorization',
  'Authorization',
  'token',
  'env',
  'secrets',
] as const

/** How log lines are written: JSON lines, or pino-pretty's human-readable lines. */
export type LogFormat = 'json' | 'pretty'

/**
 * The format for a destination: `pretty` for standard output when it is a terminal (TTY),
 * `json` otherwise (a file, a pipe, a service manager's journal).
 * @param destination - as given to {@link createLogger} (undefined: standard output)
 * @param stdoutIsTty - whether standard output is a terminal (default: `process.stdout.isTTY`)
 */
export function defaultLogFormat(
  destination: string | number | undefined,
  stdoutIsTty: boolean = process.stdout.isTTY === true,
): LogFormat {
  return destination === undefined && stdoutIsTty ? 'pretty' : 'json'
}

/**
 * Creates the root logger.
 * @param level - pino level name
 * @param destination - file descriptor or path (default: stdout)
 * @param format - default {@link defaultLogFormat}: pretty on a terminal, JSON otherwise
 */
export function createLogger(
  level: string,
  destination?: string | number,
  format: LogFormat = defaultLogFormat(destination),
): Logger {
  let stream: DestinationStream | undefined
  if (format === 'pretty') {
    stream = pretty({
      destination: destination ?? 1,
      // Terminals get colours; a file asked for pretty lines (tests) gets none.
      colorize: destination === undefined,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      sync: true,
    })
  } else if (destination !== undefined) {
    stream = pino.destination({ dest: destination, sync: false })
  }
  return pino(
    {
      level,
      redact: {
        paths: [...REDACTED_KEYS, ...REDACTED_KEYS.map((k) => `*.${k}`)],
        censor: '[redacted]',
      },
    },
    stream,
  )
}
