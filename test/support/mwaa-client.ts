/**
 * A small MWAA REST client for tests against a control plane's endpoint, bound to one
 * environment: raw calls (signed as the control plane's administrator), GetEnvironment,
 * waiting for a status, InvokeRestApi, and DAG runs through it.
 */
import { waitFor } from './control-plane.js'
import { signedFetch } from './credentials.js'

/** An HTTP answer: status code and parsed JSON body (undefined when empty). */
export interface JsonAnswer {
  status: number
  json: any
}

/** Test helpers for environment `name` on the control plane at `endpoint()`. */
export interface EnvironmentClient {
  /** Any MWAA (or airdock extension) call. */
  api: (method: string, pathname: string, body?: unknown) => Promise<JsonAnswer>
  /** GetEnvironment's `Environment`, undefined when there is none. */
  environment: () => Promise<any>
  /** Waits until the environment reads `status`; CREATE_FAILED throws with its LastUpdate. */
  waitForStatus: (status: string, timeoutMs?: number) => Promise<any>
  /**
   * InvokeRestApi: `status` is Airflow's status code (`RestApiStatusCode`), `json` its body
   * (`RestApiResponse`); for an MWAA error, the HTTP status and the error body.
   */
  invokeRestApi: (
    method: string,
    apiPath: string,
    body?: unknown,
    query?: Record<string, unknown>,
  ) => Promise<JsonAnswer>
  /** Unpauses a DAG and triggers a run with a short id. @returns the run id */
  triggerDagRun: (dagId: string) => Promise<string>
  /** Waits until a DAG run ends. @returns its state, `success` or `failed` */
  waitForDagRun: (dagId: string, runId: string, timeoutMs?: number) => Promise<string>
  /** `airdock status` as JSON (the `/airdock/v1/environments/{name}` extension). */
  describe: () => Promise<any>
  /** The pid of every component, by name (what must not change when nothing is applied). */
  componentPids: () => Promise<Record<string, number>>
}

/**
 * @param endpoint - returns the control plane's base URL (called per request, so the client can
 *   be made before the control plane starts or after it restarts)
 * @param name - the environment's name
 */
export function environmentClient(endpoint: () => string, name: string): EnvironmentClient {
  async function api(method: string, pathname: string, body?: unknown): Promise<JsonAnswer> {
    const res = await signedFetch(`${endpoint()}${pathname}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await res.text()
    return { status: res.status, json: text ? JSON.parse(text) : undefined }
  }
  async function environment(): Promise<any> {
    return (await api('GET', `/environments/${name}`)).json?.Environment
  }
  async function invokeRestApi(
    method: string,
    apiPath: string,
    body?: unknown,
    query?: Record<string, unknown>,
  ): Promise<JsonAnswer> {
    const r = await api('POST', `/restapi/${name}`, {
      Name: name,
      Method: method,
      Path: apiPath,
      ...(body ? { Body: body } : {}),
      ...(query ? { QueryParameters: query } : {}),
    })
    return {
      status: r.json?.RestApiStatusCode ?? r.status,
      json: r.json?.RestApiResponse ?? r.json,
    }
  }
  async function describe(): Promise<any> {
    return (await api('GET', `/airdock/v1/environments/${name}`)).json
  }
  return {
    api,
    environment,
    invokeRestApi,
    describe,
    componentPids: async () => {
      const components = (await describe()).components as { name: string; pid?: number }[]
      return Object.fromEntries(components.map((c) => [c.name, c.pid ?? 0]))
    },
    triggerDagRun: async (dagId) => {
      const runId = `r${Date.now().toString(36)}`
      await invokeRestApi('PATCH', `/dags/${dagId}`, { is_paused: false })
      const res = await invokeRestApi('POST', `/dags/${dagId}/dagRuns`, {
        logical_date: null,
        dag_run_id: runId,
      })
      if (res.status !== 200) throw new Error(`trigger ${dagId}: ${JSON.stringify(res.json)}`)
      return runId
    },
    waitForDagRun: (dagId, runId, timeoutMs = 180_000) =>
      waitFor(
        `${dagId} ${runId} finished`,
        async () => {
          const r = await invokeRestApi('GET', `/dags/${dagId}/dagRuns/${runId}`)
          const state = r.json?.state as string
          return state === 'success' || state === 'failed' ? state : undefined
        },
        timeoutMs,
      ),
    waitForStatus: (status, timeoutMs = 300_000) => {
      return waitFor(
        `${name} ${status}`,
        async () => {
          const env = await environment()
          if (env?.Status === 'CREATE_FAILED') throw new Error(JSON.stringify(env.LastUpdate))
          return env?.Status === status ? env : undefined
        },
        timeoutMs,
      )
    },
  }
}

/**
 * A CreateEnvironment body (wire names) for an mw1.micro environment on `bucket`'s `dags/`.
 * @param extra - more fields, or replacements
 */
export function microEnvironmentBody(bucket: string, extra: Record<string, unknown> = {}) {
  return {
    ExecutionRoleArn: 'arn:aws:iam::000000000000:role/r',
    SourceBucketArn: `arn:aws:s3:::${bucket}`,
    DagS3Path: 'dags',
    NetworkConfiguration: { SubnetIds: ['subnet-a', 'subnet-b'], SecurityGroupIds: ['sg-1'] },
    EnvironmentClass: 'mw1.micro',
    ...extra,
  }
}
