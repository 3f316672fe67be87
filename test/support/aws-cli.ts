/**
 * Runs the real AWS CLI (from `.tools/venv`, installed by `make setup`) against airdock, as a
 * user would: `--endpoint-url` plus `AWS_DISABLE_HOST_PREFIX_INJECTION=true`.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from './control-plane.js'

const execFileAsync = promisify(execFile)

/** The AWS CLI executable. */
export const awsCli = path.join(repoRoot, '.tools', 'venv', 'bin', 'aws')
/** The tools venv's Python (has boto3). */
export const toolsPython = path.join(repoRoot, '.tools', 'venv', 'bin', 'python')

/** Environment for AWS clients pointed at airdock. */
export function awsClientEnv(region: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    AWS_ACCESS_KEY_ID: 'AKIDAIRDOCKTEST',
    AWS_SECRET_ACCESS_KEY: 'airdock-test-secret',
    AWS_DEFAULT_REGION: region,
    AWS_DISABLE_HOST_PREFIX_INJECTION: 'true',
    AWS_PAGER: '',
  }
}

/** Result of one CLI call. */
export interface CliResult {
  code: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON when it is JSON. */
  json?: unknown
}

/** Runs `aws mwaa <args> --endpoint-url <endpoint>`; never throws on a non-zero exit. */
export async function mwaa(endpoint: string, region: string, args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(
      awsCli,
      ['mwaa', ...args, '--endpoint-url', endpoint, '--output', 'json'],
      { env: awsClientEnv(region), maxBuffer: 16 * 1024 * 1024 },
    )
    let json: unknown
    try {
      json = stdout.trim() ? JSON.parse(stdout) : undefined
    } catch {
      // Not JSON (e.g. text output); callers use stdout.
    }
    return { code: 0, stdout, stderr, json }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

/** Runs a boto3 script (Python source on stdin) with `ENDPOINT` and `REGION` in its environment. */
export async function boto3(endpoint: string, region: string, script: string): Promise<unknown> {
  const child = execFileAsync(toolsPython, ['-c', script], {
    env: { ...awsClientEnv(region), ENDPOINT: endpoint, REGION: region },
    maxBuffer: 16 * 1024 * 1024,
  })
  const { stdout } = await child
  return JSON.parse(stdout) as unknown
}
