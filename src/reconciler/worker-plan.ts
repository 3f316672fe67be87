/**
 * Which Celery workers to run: a pure function of the workers the driver reports and the
 * desired count. Workers are never changed in place: a worker whose spec is out of date (an
 * update changed its configuration) is left out of the desired set — so the driver drains it in
 * the background — and a new worker with a fresh index takes its place at once (GRACEFUL
 * replacement: capacity never drops while old workers finish their tasks).
 *
 * Scale-in leaves out the highest indices first; a worker already stopping (draining) is never
 * counted as capacity and its index is never reused while it exists (Celery refuses a second
 * worker with the same name while the first is online).
 */
import type { ComponentPhase } from '../runtime/driver.js'

/** A worker as observed. */
export interface ObservedWorker {
  /** `worker-<index>`. */
  index: number
  phase: ComponentPhase
  /** Its running spec is the one the current environment spec asks for. */
  upToDate: boolean
}

/** Output of {@link planWorkers}. */
export interface WorkerPlan {
  /** Indices of the workers to run (kept ones first, then new ones), ascending within each part. */
  indices: number[]
  /** Out-of-date workers that this plan leaves out (to be replaced). */
  replaced: number[]
}

/**
 * Plans the worker set.
 * @param observed - the workers the driver reports (any phase)
 * @param desiredCount - how many should run (≥ 0)
 */
export function planWorkers(observed: readonly ObservedWorker[], desiredCount: number): WorkerPlan {
  const active = observed.filter((w) => w.phase !== 'stopping')
  const fresh = active
    .filter((w) => w.upToDate)
    .map((w) => w.index)
    .sort((a, b) => a - b)
  const keep = fresh.slice(0, desiredCount)
  let next = Math.max(0, ...observed.map((w) => w.index)) + 1
  const added: number[] = []
  while (keep.length + added.length < desiredCount) added.push(next++)
  return {
    indices: [...keep, ...added],
    replaced: active
      .filter((w) => !w.upToDate)
      .map((w) => w.index)
      .sort((a, b) => a - b),
  }
}

/** The index of a worker component name (`worker-12` → 12), or undefined for other names. */
export function workerIndex(name: string): number | undefined {
  const match = /^worker-(\d+)$/.exec(name)
  return match ? Number(match[1]) : undefined
}
