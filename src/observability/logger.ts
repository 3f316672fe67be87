/**
 * The control plane's logger: pino, JSON lines, with secrets redacted by key name
 * (style: constant message, variables in fields).
 */
import { pino, type Logger } from 'pino'

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

/**
 * Creates the root logger.
 * @param level - pino level name
 * @param destination - file descriptor or path (default: stdout)
 */
export function createLogger(level: string, destination?: string | number): Logger {
  return pino(
    {
      level,
      redact: {
        paths: [...REDACTED_KEYS, ...REDACTED_KEYS.map((k) => `*.${k}`)],
        censor: '[redacted]',
      },
    },
    destination === undefined ? undefined : pino.destination({ dest: destination, sync: false }),
  )
}
