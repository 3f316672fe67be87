/**
 * Reads Airflow 3's `GET /api/v2/monitor/health` (no auth). The HTTP status is 200 even when a
 * component is unhealthy, so the body decides (reference `airflow3-runtime.md` §5.1). Newer
 * builds add `detailed_status` and `instances`; unknown members are ignored.
 */

/** Airflow's own view of the environment. */
export interface AirflowHealth {
  /** True when the api-server answered the health endpoint at all. */
  reachable: boolean
  metadatabase: boolean
  scheduler: boolean
  triggerer: boolean
  dagProcessor: boolean
  /** Names of the parts that are not healthy, for messages. */
  unhealthy: string[]
}

/** `{ status }` objects of the health body. */
type Part = { status?: string | null } | undefined

/**
 * Interprets a health body.
 * @param body - parsed JSON of `/api/v2/monitor/health`
 */
export function parseAirflowHealth(body: unknown): AirflowHealth {
  const b = (body ?? {}) as Record<string, Part>
  const ok = (p: Part): boolean => p?.status === 'healthy'
  const health: AirflowHealth = {
    reachable: true,
    metadatabase: ok(b.metadatabase),
    scheduler: ok(b.scheduler),
    triggerer: ok(b.triggerer),
    dagProcessor: ok(b.dag_processor),
    unhealthy: [],
  }
  if (!health.metadatabase) health.unhealthy.push('metadatabase')
  if (!health.scheduler) health.unhealthy.push('scheduler')
  if (!health.triggerer) health.unhealthy.push('triggerer')
  if (!health.dagProcessor) health.unhealthy.push('dag-processor')
  return health
}

/**
 * Fetches and interprets the health of the api-server at `baseUrl`.
 * @param baseUrl - e.g. `http://127.0.0.1:18002`
 * @param timeoutMs - request timeout in ms
 * @returns `reachable: false` when the api-server did not answer 200 in time (never throws)
 */
export async function fetchAirflowHealth(
  baseUrl: string,
  timeoutMs = 3_000,
): Promise<AirflowHealth> {
  try {
    const res = await fetch(`${baseUrl}/api/v2/monitor/health`, {
      signal: AbortSignal.timeout(timeoutMs),
    })
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
    return parseAirflowHealth(await res.json())
  } catch {
    // Not answering is an observation, not an error: the caller reports it.
    return {
      reachable: false,
      metadatabase: false,
      scheduler: false,
      triggerer: false,
      dagProcessor: false,
      unhealthy: ['api-server'],
    }
  }
}
