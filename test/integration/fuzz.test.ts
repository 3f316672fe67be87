/**
 * Fuzzes the whole API with a real fuzzer: schemathesis (PyPI, `.tools/venv`) generates requests
 * from `docs/openapi.yaml` and sends them, through a proxy that signs them with the
 * administrator's key (SigV4), to a control plane with no environment.
 *
 * - Negative mode (invalid data) for every operation, positive mode for the read-only (GET)
 *   ones: a valid CreateEnvironment would start a real Airflow environment.
 * - No 5xx (counted by the proxy) and no failed schemathesis check (server errors, status codes,
 *   content types, headers and bodies the document does not describe, invalid data accepted,
 *   valid data refused).
 * - No state change from a rejected request: every table of the control-plane database but
 *   the audit trail and the migrations table holds the same rows after the fuzz as before, and
 *   the key ring's folder (customer KMS keys are files) the same files, but for the keys that
 *   accepted CreateKey requests created (its body is optional, so schemathesis's "no body" case
 *   is a valid request; invalid data that was accepted is schemathesis's negative_data_rejection
 *   failure).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot, startTestControlPlane, type TestControlPlane } from '../support/control-plane.js'
import {
  readCredentialsFile,
  startSigningProxy,
  type Credentials,
  type SigningProxy,
  type SigningProxyCounts,
} from '../support/signing-proxy.js'

const SCHEMATHESIS = path.join(repoRoot, '.tools/venv/bin/schemathesis')
const OPENAPI = path.join(repoRoot, 'docs/openapi.yaml')
/** Fixed, so that a failure can be replayed with the same command line. */
const SEED = 20261121
/**
 * Test cases per operation in the fuzzing phase (the coverage phase adds its own): about 5 600
 * requests, under a minute on 2 cores.
 */
const MAX_EXAMPLES = { negative: 150, positive: 200 }
/** Kills a schemathesis run that takes longer than this. */
const RUN_TIMEOUT_MS = 300_000

/**
 * Check settings the command line cannot express (written to the run's folder):
 * - invalid data must be answered with one of the statuses airdock rejects with (431: Node's HTTP
 *   server refuses a request line and headers over 16 KiB, e.g. a long percent-encoded query);
 * - ListEnvironments: a `NextToken` airdock did not issue is a ValidationException, and no schema
 *   can say which tokens it issued.
 */
const SCHEMATHESIS_CONFIG = `
[checks.negative_data_rejection]
expected-statuses = ["400", "403", "404", "429", "431", "5xx"]

[[operations]]
include-operation-id = "ListEnvironments"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
`

const COMMON_CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
]

interface RunResult {
  command: string
  code: number | null
  output: string
  seconds: number
}

/** Runs schemathesis in `cwd` (its reports and caches stay there) and collects its output. */
function runSchemathesis(args: string[], cwd: string): Promise<RunResult> {
  const started = performance.now()
  const command = [path.relative(repoRoot, SCHEMATHESIS), ...args].join(' ')
  return new Promise((resolve, reject) => {
    const child = spawn(SCHEMATHESIS, args, {
      cwd,
      detached: true,
      env: { ...process.env, NO_COLOR: '1', COLUMNS: '120', PYTHONUNBUFFERED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8')
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    const timer = setTimeout(() => {
      output += `\n[killed after ${RUN_TIMEOUT_MS / 1000} s]`
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    }, RUN_TIMEOUT_MS)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ command, code, output, seconds: (performance.now() - started) / 1000 })
    })
  })
}

/**
 * Every row of every table of the control-plane database except the audit trail (every request
 * adds to it) and the migrations table, as sorted JSON text per table.
 */
async function snapshotDatabase(url: string): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tables = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables
        WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
          AND table_name NOT LIKE '%audit%' AND table_name <> 'airdock_migrations'
        ORDER BY table_name`,
    )
    const snapshot: Record<string, string[]> = {}
    for (const { table_name: table } of tables.rows) {
      const rows = await client.query<{ row: string }>(
        `SELECT to_jsonb(t)::text AS row FROM "${table.replace(/"/g, '""')}" t`,
      )
      snapshot[table] = rows.rows.map((r) => r.row).sort()
    }
    return snapshot
  } finally {
    await client.end()
  }
}

/** Every file under `dir` (relative path → SHA-256 of its content); `{}` when there is no `dir`. */
async function snapshotFiles(dir: string): Promise<Record<string, string>> {
  if (!existsSync(dir)) return {}
  const snapshot: Record<string, string> = {}
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    snapshot[path.relative(dir, file)] = createHash('sha256')
      .update(await readFile(file))
      .digest('hex')
  }
  return snapshot
}

/** The state a request could change: the database (less the audit trail) and the key ring. */
async function snapshotState(
  tcp: TestControlPlane,
): Promise<{ database: Record<string, string[]>; kms: Record<string, string> }> {
  return {
    database: await snapshotDatabase(tcp.cp.postgres.controlPlaneUrl),
    kms: await snapshotFiles(path.join(tcp.settings.dataDir, 'kms')),
  }
}

/** schemathesis's report from its failures on (or its last lines), for assertion messages. */
function failuresOf(output: string): string {
  const start = output.search(/^=+ (FAILURES|ERRORS) =+$/m)
  return (start >= 0 ? output.slice(start) : output).slice(-30_000)
}

function minus(after: SigningProxyCounts, before: SigningProxyCounts): string {
  return `${after.requests - before.requests} requests, ${after.status4xx - before.status4xx} 4xx, ${after.status5xx - before.status5xx} 5xx, ${after.status2xx - before.status2xx} 2xx`
}

describe('fuzzing the API (schemathesis)', () => {
  let tcp: TestControlPlane | undefined
  let proxy: SigningProxy | undefined

  beforeAll(async () => {
    tcp = await startTestControlPlane()
    const credentialsFile = path.join(tcp.settings.dataDir, 'credentials')
    const credentials: Credentials = await readCredentialsFile(credentialsFile, 'airdock')
    proxy = await startSigningProxy({
      target: tcp.cp.endpoint,
      region: tcp.settings.region,
      credentials,
    })
  })

  afterAll(async () => {
    await proxy?.stop()
    await tcp?.destroy()
  })

  it('answers every generated request without a 5xx, and rejected requests change nothing', async () => {
    if (!tcp || !proxy) throw new Error('setup failed')
    const before = await snapshotState(tcp)
    const configFile = path.join(tcp.settings.dataDir, 'schemathesis.toml')
    await writeFile(configFile, SCHEMATHESIS_CONFIG)
    const common = [
      '--config-file',
      configFile,
      'run',
      OPENAPI,
      '--url',
      proxy.url,
      '--seed',
      String(SEED),
      '--workers',
      '2',
      '--phases',
      'coverage,fuzzing',
      '--generation-database',
      'none',
      '--generation-with-security-parameters',
      'false',
      '--request-timeout',
      '30',
      '--no-color',
    ]
    const runs: { name: string; args: string[] }[] = [
      {
        name: 'negative, every operation',
        args: [
          ...common,
          '--mode',
          'negative',
          '--max-examples',
          String(MAX_EXAMPLES.negative),
          '--checks',
          [...COMMON_CHECKS, 'negative_data_rejection'].join(','),
        ],
      },
      {
        name: 'positive, read-only operations',
        args: [
          ...common,
          '--mode',
          'positive',
          '--include-method',
          'GET',
          '--max-examples',
          String(MAX_EXAMPLES.positive),
          '--checks',
          [...COMMON_CHECKS, 'positive_data_acceptance'].join(','),
        ],
      },
    ]

    const results: (RunResult & { name: string; counts: string })[] = []
    const started = performance.now()
    for (const run of runs) {
      const countsBefore = proxy.counts()
      const result = await runSchemathesis(run.args, tcp.settings.dataDir)
      results.push({ ...result, name: run.name, counts: minus(proxy.counts(), countsBefore) })
    }
    const seconds = (performance.now() - started) / 1000
    const after = await snapshotState(tcp)
    const accepted = proxy.accepted()
    // Keys created by accepted CreateKey requests are changes that requests asked for.
    for (const request of accepted) {
      if (request.method !== 'POST' || request.path !== '/airdock/v1/kms/keys') continue
      const keyId = (JSON.parse(request.body) as { KeyMetadata?: { KeyId?: string } }).KeyMetadata
        ?.KeyId
      if (keyId !== undefined) delete after.kms[`${keyId}.json`]
    }
    const counts = proxy.counts()

    console.log(
      `fuzz: ${counts.requests} requests, ${counts.status4xx} 4xx, ${counts.status5xx} 5xx, ${counts.status2xx} 2xx`,
    )
    const report = [
      `fuzz took ${seconds.toFixed(1)} s; by status: ${JSON.stringify(counts.byStatus)}`,
      `accepted changes: ${accepted.map((a) => `${a.method} ${a.path} → ${a.status}`).join('; ') || 'none'}`,
      ...results.map(
        (r) =>
          `--- ${r.name}: exit ${r.code}, ${r.seconds.toFixed(1)} s, ${r.counts}\n$ ${r.command}\n${failuresOf(r.output)}`,
      ),
    ].join('\n')

    // Soft: one run reports server errors, failed checks and state changes together.
    expect.soft(counts.status5xx, report).toBe(0)
    for (const r of results) expect.soft(r.code, report).toBe(0)
    expect.soft(after, 'state changed during the fuzz').toEqual(before)
    // The fuzzer got past authentication to the validators, and the read-only operations answered.
    expect(counts.byStatus['400'] ?? 0, report).toBeGreaterThan(100)
    expect(counts.status2xx, report).toBeGreaterThan(0)
  })
})
