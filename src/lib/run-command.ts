/**
 * Runs a program to completion, without a shell, in a process group of its own: output
 * collected (each stream capped), and the whole group SIGKILLed when it runs past its limit.
 */
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { createInterface } from 'node:readline'

/** How a program ended. */
export interface CommandResult {
  /** Exit code; null when it was killed (see `timedOut`) or died of a signal. */
  code: number | null
  /** Whether it ran past `timeoutMs` and was killed. */
  timedOut: boolean
  stdout: Buffer
  stderr: Buffer
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  env: Record<string, string>
  cwd?: string
  /** Limit, in ms; then SIGKILL to the process group. */
  timeoutMs: number
  /** Largest stdout and stderr kept, each in bytes (default 16 MiB); the rest is dropped. */
  maxOutputBytes?: number
  /** Also write both streams, interleaved as they come, to this file (replaced). */
  logFile?: string
  /** Append to `logFile` instead of replacing it. */
  appendLog?: boolean
  /** Receives every output line (stdout and stderr) as it comes, e.g. to show progress. */
  onLine?: (line: string) => void
}

/**
 * @throws the spawn error (e.g. ENOENT for a missing program)
 */
export function runCommand(
  command: string,
  args: string[],
  options: RunCommandOptions,
): Promise<CommandResult> {
  const cap = options.maxOutputBytes ?? 16 * 1024 * 1024
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const collect = () => {
      const chunks: Buffer[] = []
      let size = 0
      return {
        chunks,
        add: (chunk: Buffer) => {
          if (size >= cap) return
          chunks.push(chunk.subarray(0, cap - size))
          size += chunk.length
        },
      }
    }
    const out = collect()
    const err = collect()
    child.stdout.on('data', out.add)
    child.stderr.on('data', err.add)
    if (options.onLine) {
      createInterface({ input: child.stdout }).on('line', options.onLine)
      createInterface({ input: child.stderr }).on('line', options.onLine)
    }
    const log = options.logFile
      ? createWriteStream(options.logFile, { flags: options.appendLog ? 'a' : 'w' })
      : undefined
    if (log) {
      child.stdout.pipe(log, { end: false })
      child.stderr.pipe(log, { end: false })
    }
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    }, options.timeoutMs)
    // When the program exits, whatever it left running in its group (a `cmd &` in a script)
    // goes too: nothing outlives the command, and a child holding the output pipes open cannot
    // make a finished command look like it ran past its limit.
    child.on('exit', () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // The group is already gone.
      }
    })
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      const result = {
        code: timedOut ? null : code,
        timedOut,
        stdout: Buffer.concat(out.chunks),
        stderr: Buffer.concat(err.chunks),
      }
      if (log) log.end(() => resolve(result))
      else resolve(result)
    })
  })
}
