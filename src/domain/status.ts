/**
 * The one place where MWAA's status is derived from what the reconciler observed
 * (DESIGN.md decision 3). Pure: no I/O, no clock.
 *
 * Rules (MWAA user guide "Environment status"; reference §2):
 * - deletion: DELETING while tearing down, DELETED once torn down;
 * - first provisioning: CREATING, or CREATE_FAILED when it failed (only delete is allowed then);
 * - after the environment has been AVAILABLE once, an accepted update whose generation is not
 *   yet observed reads UPDATING, or UPDATE_FAILED when that generation failed; an Airflow
 *   version change reads CREATING_SNAPSHOT while the metadata database is copied and
 *   ROLLING_BACK while the copy is restored (reference §2 "Typical flows", §10);
 * - maintenance in the weekly window reads MAINTENANCE;
 * - converged: AVAILABLE when every component runs and Airflow reports itself healthy,
 *   otherwise UNAVAILABLE (a crash-looping component, or an unhealthy Airflow).
 */
import type {
  EnvironmentObservation,
  EnvironmentPhase,
  EnvironmentStatus,
  LastUpdate,
  LastUpdateRequest,
} from './environment.js'

/** What the derivation reads. */
export interface StatusInput {
  phase: EnvironmentPhase
  generation: number
  observation: Pick<
    EnvironmentObservation,
    | 'observedGeneration'
    | 'healthy'
    | 'crashLooping'
    | 'failedGeneration'
    | 'failureCode'
    | 'message'
    | 'versionChange'
    | 'maintenance'
  >
}

/** Derives the MWAA status of an environment. */
export function deriveEnvironmentStatus(input: StatusInput): EnvironmentStatus {
  const { phase, generation, observation } = input
  switch (phase) {
    case 'deleted':
      return 'DELETED'
    case 'deleting':
      return 'DELETING'
    case 'create-failed':
      return 'CREATE_FAILED'
    case 'creating':
      return 'CREATING'
    case 'provisioned':
      if (observation.observedGeneration < generation) {
        if (observation.failedGeneration === generation) return 'UPDATE_FAILED'
        const step = observation.versionChange?.step
        if (step === 'snapshotting') return 'CREATING_SNAPSHOT'
        if (step === 'rolling-back') return 'ROLLING_BACK'
        return 'UPDATING'
      }
      if (observation.maintenance) return 'MAINTENANCE'
      return observation.healthy && !observation.crashLooping ? 'AVAILABLE' : 'UNAVAILABLE'
  }
}

/**
 * Derives MWAA's `LastUpdate`: PENDING until the reconciler has converged to the latest
 * generation, SUCCESS once it has, FAILED when that generation failed. `Error` is present for a
 * failed create/update and while the environment is UNAVAILABLE (it says why).
 */
export function deriveLastUpdate(
  request: LastUpdateRequest,
  input: StatusInput,
  status: EnvironmentStatus = deriveEnvironmentStatus(input),
): LastUpdate {
  const { generation, observation } = input
  const failed = observation.failedGeneration === generation
  const lastUpdate: LastUpdate = {
    status: failed
      ? 'FAILED'
      : observation.observedGeneration >= generation
        ? 'SUCCESS'
        : 'PENDING',
    createdAt: request.createdAt,
    source: request.source,
  }
  if (request.workerReplacementStrategy) {
    lastUpdate.workerReplacementStrategy = request.workerReplacementStrategy
  }
  if ((failed || status === 'UNAVAILABLE') && observation.message) {
    lastUpdate.error = {
      errorCode: observation.failureCode ?? 'UNKNOWN',
      errorMessage: observation.message.slice(0, 1024),
    }
  }
  return lastUpdate
}
