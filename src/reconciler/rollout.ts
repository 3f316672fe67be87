/**
 * Rolling restarts: when an update changes the spec of several api-servers or schedulers, they
 * are replaced one at a time, each only while every other one of its kind is serving, so the
 * environment keeps serving and scheduling through the update (MWAA replaces its web server and
 * scheduler containers the same way). A pure function of the desired specs and what runs now;
 * the reconciler keeps the others on the spec they run until their turn.
 *
 * Rules, per rolling kind:
 * - a changed component that is broken (the driver reports it exited or crash-looping) is
 *   replaced at once: it serves nothing, so replacing it costs nothing;
 * - every other changed component waits while any component of its kind is in flux: broken,
 *   unchanged but not ready (e.g. the one replaced last, still starting), being stopped, about to
 *   be removed (scale-in) or about to be added (scale-out). Scaling goes first, and a failed
 *   readiness probe only ever delays the rollout, never releases anything;
 * - otherwise one changed component is replaced: the one that does not serve, if exactly one
 *   does not (harmless while the others serve), else the first by name; the rest wait.
 */
import { hashComponentSpec, type ComponentPhase, type ComponentSpec } from '../runtime/driver.js'

/** Kinds of component that are restarted one at a time. */
export const ROLLING_KINDS: readonly string[] = ['api-server', 'scheduler']

/** A component as it runs now. */
export interface RunningComponent {
  name: string
  /** {@link ComponentSpec.component}. */
  component: string
  /** Hash of the spec it runs. */
  specHash: string
  phase: ComponentPhase
  /** Serving: an api-server answers its health check; a scheduler is past its warm-up. */
  ready: boolean
}

/** Output of {@link planRollout}. */
export interface Rollout {
  /** The specs to apply now: desired, except held components at the spec they run. */
  specs: ComponentSpec[]
  /** Names of components whose new spec waits for its turn. */
  held: string[]
}

const BROKEN: readonly ComponentPhase[] = ['exited', 'crash-looping']

/**
 * Plans one step of a rolling restart.
 * @param desired - the full desired set
 * @param running - every component the driver runs now
 * @param runningSpec - the spec a running component runs (undefined: it is replaced at once)
 */
export function planRollout(
  desired: readonly ComponentSpec[],
  running: readonly RunningComponent[],
  runningSpec: (name: string) => ComponentSpec | undefined,
  kinds: readonly string[] = ROLLING_KINDS,
): Rollout {
  const desiredByName = new Map(desired.map((d) => [d.name, d]))
  const runningByName = new Map(running.map((r) => [r.name, r]))
  const hold = new Set<string>()
  for (const kind of kinds) {
    // Changed components that are not broken: each waits for its turn.
    const candidates: RunningComponent[] = []
    let inFlux = desired.some((d) => d.component === kind && !runningByName.has(d.name))
    for (const now of running.filter((r) => r.component === kind)) {
      const want = desiredByName.get(now.name)
      if (want === undefined || now.phase === 'stopping' || BROKEN.includes(now.phase)) {
        // Being removed, stopped, or broken (a broken changed one is replaced at once).
        inFlux = true
        continue
      }
      const changed =
        now.specHash !== hashComponentSpec(want) && runningSpec(now.name) !== undefined
      if (changed) candidates.push(now)
      else if (!now.ready) inFlux = true
    }
    candidates.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const notReady = candidates.filter((c) => !c.ready)
    // One goes when nothing else is in flux: a not-serving one first (harmless while the
    // others serve), else the first; with two or more not serving, wait.
    const release = inFlux
      ? undefined
      : notReady.length === 0
        ? candidates[0]
        : notReady.length === 1
          ? notReady[0]
          : undefined
    for (const c of candidates) if (c !== release) hold.add(c.name)
  }
  return {
    specs: desired.map((d) => (hold.has(d.name) ? runningSpec(d.name)! : d)),
    held: [...hold].sort(),
  }
}
