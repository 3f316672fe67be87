/**
 * Runs the real AWS CLI (from `.tools/venv`, installed by `make setup`) against airdock, as a
 * user would: `--endpoint-url` plus `AWS_DISABLE_HOST_PREFIX_INJECTION=true`.
 */
import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { repoRoot } from './control-plane.js'
import { credentialsFileFor } from './credentials.js'
import type { Credentials } from '../../src/iam/signed-fetch.js'

const execFileAsync = promisify(execFile)

/** The AWS CLI executable. */
export const awsCli = path.join(repoRoot, '.tools', 'venv', 'bin', 'aws')
/** The tools venv's Python (has boto3). */
export const toolsPython = path.join(repoRoot, '.tools', 'venv', 'bin', 'python')

/**
 * Environment for AWS clients pointed at the control plane at `endpoint`: its credentials file
 * unmodified (profile `airdock`), or `credentials` of another user.
 */
export function awsClientEnv(
  endpoint: string,
  region: string,
  credentials?: Credentials,
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    AWS_CONFIG_FILE: '/dev/null',
    ...(credentials
      ? {
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        }
      : { AWS_SHARED_CREDENTIALS_FILE: credentialsFileFor(endpoint), AWS_PROFILE: 'airdock' }),
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

/**
 * Runs `aws mwaa <args> --endpoint-url <endpoint>` as the control plane's administrator (or as
 * `credentials`); never throws on a non-zero exit.
 */
export async function mwaa(
  endpoint: string,
  region: string,
  args: string[],
  credentials?: Credentials,
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(
      awsCli,
      ['mwaa', ...args, '--endpoint-url', endpoint, '--output', 'json'],
      { env: awsClientEnv(endpoint, region, credentials), maxBuffer: 16 * 1024 * 1024 },
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

/**
 * Runs a boto3 script (Python source) with `ENDPOINT` and `REGION` in its environment, as the
 * control plane's administrator (or as `credentials`); prints JSON on stdout.
 */
export async function boto3(
  endpoint: string,
  region: string,
  script: string,
  credentials?: Credentials,
): Promise<unknown> {
  const child = execFileAsync(toolsPython, ['-c', script], {
    env: { ...awsClientEnv(endpoint, region, credentials), ENDPOINT: endpoint, REGION: region },
    maxBuffer: 16 * 1024 * 1024,
  })
  const { stdout } = await child
  return JSON.parse(stdout) as unknown
}
