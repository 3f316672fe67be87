/**
 * The scaling policies: pure functions from a load sample to desired counts. The autoscaler
 * feeds them; the table tests in `scaling-policy.test.ts` pin them down.
 *
 * Workers (MWAA, "Configuring automatic scaling", reference `mwaa-api-and-behaviour.md` §4, and
 * the Helm chart's KEDA query, `airflow3-runtime.md` §3.4): desired = ceil((queued + running) /
 * tasks per worker), clamped to MinWorkers..MaxWorkers. Scale-out is immediate. Scale-in happens
 * only once queued + running has been 0 for the idle period (MWAA: 2 minutes), and then goes
 * straight to MinWorkers; while tasks are queued or running the count never goes down (except
 * when an update lowers MaxWorkers).
 *
 * Web servers (MWAA, "Configuring web server automatic scaling", §4): scale out when the mean CPU
 * of the web servers is above 70 % or there are more than 15 active connections per web server;
 * scale in, one at a time, after the load has stayed low for the cool-down period — low meaning
 * one web server fewer would still be under half of both thresholds (hysteresis, so a load near
 * a threshold does not flap).
 */

import { clamp } from '../domain/scaling.js'

/** MWAA's web server scale-out threshold: mean CPU utilisation, in percent of one core. */
export const WEBSERVER_CPU_SCALE_OUT_PERCENT = 70
/** MWAA's web server scale-out threshold: active connections per web server. */
export const WEBSERVER_CONNECTIONS_SCALE_OUT = 15

/** Input of {@link decideWorkers}. */
export interface WorkerScalingInput {
  /** Queued + running task instances on the workers' queue (≥ 0). */
  backlog: number
  minWorkers: number
  maxWorkers: number
  /** Task slots per worker (class concurrency or `celery.worker_autoscale` max), ≥ 1. */
  tasksPerWorker: number
  /** The desired count decided last time (MinWorkers before the first decision). */
  currentDesired: number
  /** Since when (ms since epoch) the backlog has been 0; undefined while busy. */
  idleSinceMs?: number
  /** Now, ms since epoch. */
  nowMs: number
  /** How long the backlog must stay 0 before scaling in, in ms (MWAA: 120 000). */
  scaleInIdleMs: number
}

/** Output of {@link decideWorkers}. */
export interface WorkerScalingDecision {
  desiredWorkers: number
  /** Carry into the next call's `idleSinceMs`. */
  idleSinceMs?: number
}

/**
 * Desired Celery workers for one sample (see the file comment for the rules).
 * @returns the desired count (always within min..max) and the idle timer to carry forward
 */
export function decideWorkers(input: WorkerScalingInput): WorkerScalingDecision {
  const { backlog, minWorkers, maxWorkers, currentDesired, nowMs } = input
  const needed = Math.ceil(backlog / Math.max(1, input.tasksPerWorker))
  if (backlog > 0) {
    return { desiredWorkers: clamp(Math.max(currentDesired, needed), minWorkers, maxWorkers) }
  }
  const idleSinceMs = input.idleSinceMs ?? nowMs
  if (nowMs - idleSinceMs >= input.scaleInIdleMs) {
    return { desiredWorkers: minWorkers, idleSinceMs }
  }
  return { desiredWorkers: clamp(currentDesired, minWorkers, maxWorkers), idleSinceMs }
}

/** Input of {@link decideWebservers}. */
export interface WebserverScalingInput {
  minWebservers: number
  maxWebservers: number
  /** The desired count decided last time (MinWebservers before the first decision). */
  currentDesired: number
  /** Web servers actually running now (the load is spread over these), ≥ 0. */
  running: number
  /** Mean CPU utilisation of the running web servers, percent of one core. */
  cpuPercent: number
  /** Open client connections at the environment's gateway. */
  activeConnections: number
  /** Since when (ms since epoch) the load has been low; undefined otherwise. */
  lowLoadSinceMs?: number
  nowMs: number
  /** How long the load must stay low before one web server is removed, in ms. */
  scaleInCooldownMs: number
}

/** Output of {@link decideWebservers}. */
export interface WebserverScalingDecision {
  desiredWebservers: number
  /** Carry into the next call's `lowLoadSinceMs`. */
  lowLoadSinceMs?: number
}

/**
 * Desired web servers for one sample (see the file comment for the rules).
 * @returns the desired count (always within min..max) and the low-load timer to carry forward
 */
export function decideWebservers(input: WebserverScalingInput): WebserverScalingDecision {
  const { minWebservers, maxWebservers, currentDesired, cpuPercent, activeConnections, nowMs } =
    input
  const current = clamp(currentDesired, minWebservers, maxWebservers)
  const servers = Math.max(1, input.running)
  const connectionsPerServer = activeConnections / servers
  if (
    cpuPercent > WEBSERVER_CPU_SCALE_OUT_PERCENT ||
    connectionsPerServer > WEBSERVER_CONNECTIONS_SCALE_OUT
  ) {
    const forConnections = Math.ceil(activeConnections / WEBSERVER_CONNECTIONS_SCALE_OUT)
    return {
      desiredWebservers: clamp(Math.max(current + 1, forConnections), minWebservers, maxWebservers),
    }
  }
  const fewer = servers - 1
  const lowEnough =
    current > minWebservers &&
    fewer >= 1 &&
    activeConnections / fewer <= WEBSERVER_CONNECTIONS_SCALE_OUT / 2 &&
    (cpuPercent * servers) / fewer <= WEBSERVER_CPU_SCALE_OUT_PERCENT / 2
  if (!lowEnough) return { desiredWebservers: current }
  const lowLoadSinceMs = input.lowLoadSinceMs ?? nowMs
  if (nowMs - lowLoadSinceMs >= input.scaleInCooldownMs) {
    // One at a time; the next step waits a whole cool-down again.
    return { desiredWebservers: current - 1, lowLoadSinceMs: nowMs }
  }
  return { desiredWebservers: current, lowLoadSinceMs }
}
