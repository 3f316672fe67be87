import { describe, expect, it } from 'vitest'
import { parseAirflowHealth } from './health.js'

describe('parseAirflowHealth', () => {
  it('reads a healthy Airflow 3 body', () => {
    const h = parseAirflowHealth({
      metadatabase: { status: 'healthy' },
      scheduler: { status: 'healthy', latest_scheduler_heartbeat: '2026-11-21T10:00:00+00:00' },
      triggerer: { status: 'healthy', latest_triggerer_heartbeat: '2026-11-21T10:00:00+00:00' },
      dag_processor: {
        status: 'healthy',
        latest_dag_processor_heartbeat: '2026-11-21T10:00:00+00:00',
      },
    })
    expect(h.unhealthy).toEqual([])
    expect(h.scheduler && h.triggerer && h.dagProcessor && h.metadatabase).toBe(true)
  })

  it('treats null (never ran) and unhealthy parts as not healthy, whatever else the body holds', () => {
    const h = parseAirflowHealth({
      metadatabase: { status: 'healthy' },
      scheduler: { status: 'unhealthy', latest_scheduler_heartbeat: null },
      triggerer: { status: null },
      dag_processor: { status: 'healthy', detailed_status: 'degraded', instances: [] },
    })
    expect(h.unhealthy).toEqual(['scheduler', 'triggerer'])
    expect(h.dagProcessor).toBe(true)
  })

  it('reports everything unhealthy for an empty body', () => {
    expect(parseAirflowHealth(null).unhealthy).toEqual([
      'metadatabase',
      'scheduler',
      'triggerer',
      'dag-processor',
    ])
  })
})
