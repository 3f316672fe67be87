/**
 * The Airflow versions airdock can run, and the version changes MWAA allows between them
 * (reference `mwaa-api-and-behaviour.md` §10). Each version has a committed lock file at
 * `runtimes/<version>/requirements.lock` (our constraints file, made with `uv pip compile`).
 */

/** Supported `AirflowVersion` values, newest first. */
export const SUPPORTED_AIRFLOW_VERSIONS = ['3.3.2', '3.2.1'] as const

/** Default when `AirflowVersion` is omitted: the latest supported version, as MWAA does. */
export const DEFAULT_AIRFLOW_VERSION: string = SUPPORTED_AIRFLOW_VERSIONS[0]

/** True when `version` is one airdock can run. */
export function isSupportedAirflowVersion(version: string): boolean {
  return (SUPPORTED_AIRFLOW_VERSIONS as readonly string[]).includes(version)
}

/**
 * Orders two dotted versions numerically (`3.10.0` after `3.9.2`).
 * @returns a negative number when `a` is older, 0 when equal, positive when `a` is newer
 */
export function compareAirflowVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/**
 * Why MWAA would refuse to move an environment from `from` to `to` in place, or undefined when
 * the move is allowed. MWAA (§10): minor upgrades and downgrades within a major version are done
 * in place; across major versions only 2.11.x → 3.x and back are, anything else needs a new
 * environment. airdock runs Airflow 3 only, so a major change is always refused.
 */
export function versionChangeRefusal(from: string, to: string): string | undefined {
  if (from === to) return undefined
  const major = (v: string) => v.split('.')[0]
  if (major(from) !== major(to)) {
    return `AirflowVersion cannot be changed in place from ${from} to ${to}: only versions of the same major release can be upgraded or downgraded in place. Create a new environment with ${to} instead.`
  }
  return undefined
}
