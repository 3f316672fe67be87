/**
 * Rolling restarts: when an update changes the spec of several api-servers or schedulers, they
 * are replaced one at a time, each only while every other one of its kind is ready, so the
 * environment keeps serving and scheduling through the update (MWAA replaces its web server and
 * scheduler containers the same way). A pure function of the desired specs and what runs now;
 * the reconciler holds the others at the spec they run until their turn.
 *
 * Rules, per rolling kind:
 * - a changed component that is not ready (crashed, still starting) is replaced at once: it
 *   serves nothing, so replacing it costs nothing; the ready ones wait;
 * - otherwise, when every existing component of the kind is ready, the first changed one (by
 *   name) is replaced and the rest wait;
 * - when none of the kind is ready, all changed ones are replaced (nothing to keep serving).
 * Components that are new (scale-out) or being stopped are never held.
 */
import { hashComponentSpec, type ComponentSpec } from '../runtime/driver.js'

/** Kinds of component that are restarted one at a time. */
export const ROLLING_KINDS: readonly string[] = ['api-server', 'scheduler']

/** A component as it runs now. */
export interface RunningComponent {
  name: string
  /** Hash of the spec it runs. */
  specHash: string
  /** Serving (an api-server answers its health check; a scheduler is past its warm-up). */
  ready: boolean
  /** Being stopped: not part of the rollout. */
  stopping: boolean
}

/** Output of {@link planRollout}. */
export interface Rollout {
  /** The specs to apply now: desired, except held components at the spec they run. */
  specs: ComponentSpec[]
  /** Names of components whose new spec waits for its turn. */
  held: string[]
}

/**
 * Plans one step of a rolling restart.
 * @param desired - the full desired set
 * @param running - what the driver runs now
 * @param runningSpec - the spec a running component runs (undefined: not held, replaced at once)
 */
export function planRollout(
  desired: readonly ComponentSpec[],
  running: readonly RunningComponent[],
  runningSpec: (name: string) => ComponentSpec | undefined,
  kinds: readonly string[] = ROLLING_KINDS,
): Rollout {
  const byName = new Map(running.map((r) => [r.name, r]))
  const hold = new Set<string>()
  for (const kind of kinds) {
    const members = desired
      .filter((d) => d.component === kind)
      .map((d) => ({ spec: d, now: byName.get(d.name) }))
      .filter((m) => m.now !== undefined && !m.now.stopping)
    const changed = members.filter(
      (m) => m.now!.specHash !== hashComponentSpec(m.spec) && runningSpec(m.spec.name),
    )
    const readyChanged = changed.filter((m) => m.now!.ready)
    if (readyChanged.length === 0) continue
    const brokenChanged = changed.length - readyChanged.length
    const allReady = members.every((m) => m.now!.ready)
    const goNow = brokenChanged === 0 && allReady ? readyChanged.slice(1) : readyChanged
    for (const m of goNow) hold.add(m.spec.name)
  }
  return {
    specs: desired.map((d) => (hold.has(d.name) ? runningSpec(d.name)! : d)),
    held: [...hold].sort(),
  }
}
