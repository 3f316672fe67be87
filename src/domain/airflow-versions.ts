/**
 * The Airflow versions airdock can run. Each one has a committed lock file at
 * `runtimes/<version>/requirements.lock` (our constraints file, made with `uv pip compile`).
 */

/** Supported `AirflowVersion` values, newest first. */
export const SUPPORTED_AIRFLOW_VERSIONS = ['3.3.2'] as const

/** Default when `AirflowVersion` is omitted: the latest supported version, as MWAA does. */
export const DEFAULT_AIRFLOW_VERSION: string = SUPPORTED_AIRFLOW_VERSIONS[0]

/** True when `version` is one airdock can run. */
export function isSupportedAirflowVersion(version: string): boolean {
  return (SUPPORTED_AIRFLOW_VERSIONS as readonly string[]).includes(version)
}
