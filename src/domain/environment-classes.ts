/**
 * MWAA environment classes and what they mean here (MWAA user guide, "Environment class";
 * `../shared/reference/mwaa-api-and-behaviour.md` §3).
 */

/** Facts about one environment class. */
export interface EnvironmentClassInfo {
  name: string
  /** Concurrent tasks per Celery worker (MWAA's `celery.worker_autoscale` default `n,n`). */
  tasksPerWorker: number
  /** True for `mw1.micro`: LocalExecutor in the scheduler, no Celery, no autoscaling. */
  hybrid: boolean
}

/** Every class MWAA offers, smallest first. */
export const ENVIRONMENT_CLASSES: readonly EnvironmentClassInfo[] = [
  { name: 'mw1.micro', tasksPerWorker: 3, hybrid: true },
  { name: 'mw1.small', tasksPerWorker: 5, hybrid: false },
  { name: 'mw1.medium', tasksPerWorker: 10, hybrid: false },
  { name: 'mw1.large', tasksPerWorker: 20, hybrid: false },
  { name: 'mw1.xlarge', tasksPerWorker: 40, hybrid: false },
  { name: 'mw1.2xlarge', tasksPerWorker: 80, hybrid: false },
]

/** MWAA's default class when `EnvironmentClass` is omitted. */
export const DEFAULT_ENVIRONMENT_CLASS = 'mw1.small'

/**
 * Looks up a class by name.
 * @returns the class, or `undefined` for a name MWAA does not offer
 */
export function findEnvironmentClass(name: string): EnvironmentClassInfo | undefined {
  return ENVIRONMENT_CLASSES.find((c) => c.name === name)
}
