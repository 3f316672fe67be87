/**
 * The counts an environment should run now: the autoscaler's decision clamped to the spec's
 * current Min/Max, so an UpdateEnvironment that moves Min/Max takes effect at the next
 * reconcile, before the autoscaler looks again. Read by the reconciler and the status view.
 */
import { findEnvironmentClass } from './environment-classes.js'
import type { EnvironmentScaling, EnvironmentSpec } from './environment.js'

/** `value` limited to `min..max` (min wins when they cross). */
export function clamp(value: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, value))
}

/**
 * Celery workers to run: `scaling.desiredWorkers` (MinWorkers before the autoscaler's first
 * decision) within MinWorkers..MaxWorkers; 0 for mw1.micro (no Celery workers).
 */
export function desiredWorkerCount(spec: EnvironmentSpec, scaling?: EnvironmentScaling): number {
  if (findEnvironmentClass(spec.environmentClass)?.hybrid === true) return 0
  return clamp(scaling?.desiredWorkers ?? spec.minWorkers, spec.minWorkers, spec.maxWorkers)
}

/**
 * Web servers to run: `scaling.desiredWebservers` (MinWebservers before the first decision)
 * within MinWebservers..MaxWebservers; 1 for mw1.micro.
 */
export function desiredWebserverCount(spec: EnvironmentSpec, scaling?: EnvironmentScaling): number {
  if (findEnvironmentClass(spec.environmentClass)?.hybrid === true) return 1
  return clamp(
    scaling?.desiredWebservers ?? spec.minWebservers,
    spec.minWebservers,
    spec.maxWebservers,
  )
}
