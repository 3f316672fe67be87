/**
 * `make demo` (scripts/demo.sh) against a control plane whose InvokeRestApi times out on the
 * trigger (issue 12, point 1): a proxy in front of a real control plane forwards the trigger
 * (so Airflow does create the run) and answers the client as airdock and MWAA answer when the
 * Airflow REST API misses InvokeRestApi's 10 s limit. The demo must still succeed, with that one
 * run, and end with the safe ways to stop.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  queryMetadataDatabase,
  repoRoot,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/control-plane.js'
import { environmentClient } from '../support/mwaa-client.js'

/** What InvokeRestApi answers when Airflow did not answer within 10 s (src/services/environment-service.ts). */
const timeoutAnswer = {
  status: 400,
  errorType: 'RestApiServerException',
  body: {
    RestApiStatusCode: 504,
    RestApiResponse: { detail: 'Airflow did not answer within 10 s' },
    message: 'Airflow REST API answered HTTP 504',
  },
}

/** InvokeRestApi triggers the proxy saw: the run id asked for and what upstream answered. */
const triggers: { runId: string; upstreamStatus: number }[] = []

/**
 * A proxy to `upstreamPort` that passes every request through unchanged (the SigV4 signature
 * covers the Host header, which is kept), except the first InvokeRestApi `POST …/dagRuns`:
 * forwarded, and once upstream has answered, answered with {@link timeoutAnswer}.
 */
function slowTriggerProxy(upstreamPort: number): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      let invoke: { Method?: string; Path?: string; Body?: { dag_run_id?: string } } = {}
      if (req.method === 'POST' && req.url?.startsWith('/restapi/')) {
        invoke = JSON.parse(body.toString('utf8') || '{}')
      }
      const isTrigger = invoke.Method === 'POST' && /\/dagRuns$/.test(invoke.Path ?? '')
      const upstream = http.request(
        {
          host: '127.0.0.1',
          port: upstreamPort,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          if (isTrigger && triggers.length === 0) {
            triggers.push({
              runId: invoke.Body?.dag_run_id ?? '',
              upstreamStatus: answer.statusCode ?? 0,
            })
            answer.resume()
            answer.on('end', () => {
              res.writeHead(timeoutAnswer.status, {
                'content-type': 'application/json',
                'x-amzn-ErrorType': timeoutAnswer.errorType,
              })
              res.end(JSON.stringify(timeoutAnswer.body))
            })
            return
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers)
          answer.pipe(res)
        },
      )
      upstream.on('error', () => {
        res.writeHead(502)
        res.end()
      })
      upstream.end(body)
    })
  })
}

let t: TestControlPlane
let proxy: http.Server

beforeAll(async () => {
  t = await startTestControlPlane()
  proxy = slowTriggerProxy(Number(new URL(t.cp.endpoint).port))
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
})

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve))
  await t?.destroy()
})

/** Fields 4 (`ppid`) and 19 (`nice`) of `/proc/<pid>/stat`, or undefined when it is gone. */
function statOf(pid: number): { ppid: number; nice: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = text
      .slice(text.lastIndexOf(')') + 1)
      .trim()
      .split(/\s+/)
    return { ppid: Number(fields[4 - 3]), nice: Number(fields[19 - 3]) }
  } catch {
    return undefined
  }
}

/** `root` and every process descending from it. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const stat = statOf(Number(entry))
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)])
  }
  const tree = [root]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []))
  return tree
}

/** Runs scripts/demo.sh to its end. @returns its exit code and output (stdout and stderr) */
function runDemo(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['scripts/demo.sh'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, output }))
  })
}

describe('make demo', () => {
  it('succeeds when the trigger times out after creating the run, and reports that run', async () => {
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
    const { code, output } = await runDemo({
      ...t.variables,
      AIRDOCK_ENDPOINT: endpoint,
      AIRDOCK_DEMO_TIMEOUT_S: '600',
    })
    expect(code, output).toBe(0)
    // The demo used the endpoint it was given and started no control plane of its own.
    expect(output).not.toContain('starting airdock')
    expect(output).toContain(`MWAA API endpoint : ${endpoint}`)
    // The trigger went through (Airflow created the run) and its answer was the timeout.
    expect(triggers).toHaveLength(1)
    const [{ runId, upstreamStatus }] = triggers as [(typeof triggers)[number]]
    expect(upstreamStatus).toBe(200)
    expect(output).toContain(`the run ${runId} exists`)
    expect(output).toContain(`DAG run ${runId}: success`)
    // Exactly that one triggered run (the @daily schedule may add its own), and it succeeded.
    const runs = await queryMetadataDatabase<{ run_id: string; state: string }>(
      t,
      'demo',
      "SELECT run_id, state FROM dag_run WHERE dag_id = 'daily_sales_etl' AND run_type = 'manual'",
    )
    expect(runs).toEqual([{ run_id: runId, state: 'success' }])
    // Stopping is suggested by data dir, never by process name.
    expect(output).toContain('make stop')
    expect(output).toContain('npm run -s airdock -- stop')
    expect(output).not.toContain('pgrep')
  })

  // Uses the environment the demo created (the test above runs first).
  it("runs the demo's task runner below the api-server's priority", async () => {
    const pids = await environmentClient(() => t.cp.endpoint, 'demo').componentPids()
    // mw1.micro: the scheduler's LocalExecutor forks the tasks, so it and all it forked are batch.
    const scheduler = processTree(pids['scheduler-1']!)
    expect(scheduler.length).toBeGreaterThan(1)
    const nice = scheduler.flatMap((pid) => statOf(pid)?.nice ?? [])
    expect(new Set(nice)).toEqual(new Set([10]))
    // Linux shares CPU between sessions (autogroups) first: the scheduler's session is batch too.
    const autogroup = `/proc/${pids['scheduler-1']}/autogroup`
    if (readdirSync(`/proc/${pids['scheduler-1']}`).includes('autogroup')) {
      expect(readFileSync(autogroup, 'utf8')).toMatch(/ nice 10$/m)
    }
    expect(statOf(pids['dag-processor-1']!)?.nice).toBe(10)
    expect(statOf(pids['api-server-1']!)?.nice).toBe(0)
    expect(statOf(pids['triggerer-1']!)?.nice).toBe(0)
  })
})
