import { describe, expect, it } from 'vitest'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  DEFAULT_AIRFLOW_VERSION,
  SUPPORTED_AIRFLOW_VERSIONS,
  compareAirflowVersions,
  versionChangeRefusal,
} from './airflow-versions.js'

describe('Airflow versions', () => {
  it('has a committed lock for every supported version, newest first', () => {
    const root = fileURLToPath(new URL('../../runtimes', import.meta.url))
    for (const v of SUPPORTED_AIRFLOW_VERSIONS) {
      expect(existsSync(path.join(root, v, 'requirements.lock')), v).toBe(true)
    }
    expect(SUPPORTED_AIRFLOW_VERSIONS.length).toBeGreaterThanOrEqual(2)
    const sorted = [...SUPPORTED_AIRFLOW_VERSIONS].sort(compareAirflowVersions).reverse()
    expect(sorted).toEqual([...SUPPORTED_AIRFLOW_VERSIONS])
    expect(DEFAULT_AIRFLOW_VERSION).toBe(SUPPORTED_AIRFLOW_VERSIONS[0])
  })

  it('orders versions numerically', () => {
    expect(compareAirflowVersions('3.10.0', '3.9.2')).toBeGreaterThan(0)
    expect(compareAirflowVersions('3.2.1', '3.3.2')).toBeLessThan(0)
    expect(compareAirflowVersions('3.3', '3.3.0')).toBe(0)
  })

  it('allows upgrades and downgrades within a major version, as MWAA does', () => {
    expect(versionChangeRefusal('3.2.1', '3.3.2')).toBeUndefined()
    expect(versionChangeRefusal('3.3.2', '3.2.1')).toBeUndefined()
    expect(versionChangeRefusal('3.3.2', '3.3.2')).toBeUndefined()
  })

  it('refuses a change of major version, naming both versions', () => {
    const refusal = versionChangeRefusal('3.3.2', '4.0.0')
    expect(refusal).toContain('3.3.2')
    expect(refusal).toContain('4.0.0')
    expect(refusal).toMatch(/new environment/)
  })
})
