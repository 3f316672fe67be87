/**
 * Failpoints (in the spirit of etcd's gofail and TiKV's fail-rs): named points between the
 * control plane's steps that write state or start / stop something, off and free when unset,
 * enabled by `AIRDOCK_FAILPOINTS=name=action[,name=action…]` to prove that a crash at any step
 * loses nothing (DESIGN.md decision 14).
 *
 * Actions:
 * - `exit`: the process ends at once, as SIGKILL would (it sends itself SIGKILL): no cleanup, no
 *   flush, no pid file removed;
 * - `throw`: the step fails with {@link FailpointError} (the reconciler's retry path);
 * - `off`: nothing (lets a list be edited without removing entries).
 *
 * The names are data ({@link FAILPOINT_NAMES}): the crash tests read the list, so a new step
 * without a point, or a point without a test, shows up.
 */

/** Every failpoint, by operation and step. Names are `operation.step`. */
export const FAILPOINT_NAMES = [
  // CreateEnvironment (and every reconcile of a new environment), in step order.
  'create.after-runtime',
  'create.after-secrets',
  'create.after-database',
  'create.after-migrate',
  'create.after-components',
  // UpdateEnvironment: inputs prepared (requirements layer, import check), then the rollout.
  'update.after-inputs',
  'update.after-rollout-step',
  // In-place Airflow version change: each step's transition is recorded.
  'version-change.after-step',
  // Maintenance (runtime patch) started.
  'maintenance.after-start',
  // DeleteEnvironment teardown.
  'delete.after-stop',
  'delete.after-drop-database',
  'delete.after-remove-folder',
] as const

/** A failpoint's name. */
export type FailpointName = (typeof FAILPOINT_NAMES)[number]

/** What a failpoint does when reached. */
export type FailpointAction = 'exit' | 'throw' | 'off'

const ACTIONS: readonly FailpointAction[] = ['exit', 'throw', 'off']

/** Thrown by a failpoint whose action is `throw`. */
export class FailpointError extends Error {
  constructor(readonly failpoint: FailpointName) {
    super(`failpoint ${failpoint} (AIRDOCK_FAILPOINTS)`)
  }
}

/** Thrown for an `AIRDOCK_FAILPOINTS` value naming an unknown failpoint or action. */
export class FailpointSettingError extends Error {}

/**
 * Parses `AIRDOCK_FAILPOINTS` (`name=action[,name=action…]`; whitespace around items ignored).
 * @throws FailpointSettingError naming the bad item, followed by every valid failpoint name (one
 *   per line) and the valid actions
 */
export function parseFailpoints(value: string): Map<FailpointName, FailpointAction> {
  const points = new Map<FailpointName, FailpointAction>()
  for (const item of value
    .split(',')
    .map((i) => i.trim())
    .filter(Boolean)) {
    const [name, action, ...rest] = item.split('=')
    const known = (FAILPOINT_NAMES as readonly string[]).includes(name!)
    if (!known || rest.length > 0 || !ACTIONS.includes(action as FailpointAction)) {
      const problem = !known
        ? `unknown failpoint '${name}'`
        : `unknown action '${action ?? ''}' for ${name} (valid: ${ACTIONS.join(', ')})`
      throw new FailpointSettingError(
        `AIRDOCK_FAILPOINTS: ${problem}; valid failpoints:\n${FAILPOINT_NAMES.join('\n')}`,
      )
    }
    points.set(name as FailpointName, action as FailpointAction)
  }
  return points
}

let enabled = new Map<FailpointName, FailpointAction>()

/** Enables the failpoints of `points` for this process (replacing any enabled before). */
export function enableFailpoints(points: Map<FailpointName, FailpointAction>): void {
  enabled = new Map(points)
}

/** The failpoints enabled in this process (for the start-up warning). */
export function enabledFailpoints(): ReadonlyMap<FailpointName, FailpointAction> {
  return enabled
}

/**
 * Reached at a step boundary: does what `AIRDOCK_FAILPOINTS` says for `name`, nothing when it is
 * not set (one map lookup).
 * @throws FailpointError when its action is `throw`
 */
export function failpoint(name: FailpointName): void {
  if (enabled.size === 0) return
  const action = enabled.get(name)
  if (action === 'exit') {
    // As SIGKILL would: nothing after this line runs, nothing is flushed or cleaned up (the
    // wait only holds this thread until the signal lands).
    process.kill(process.pid, 'SIGKILL')
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
  } else if (action === 'throw') {
    throw new FailpointError(name)
  }
}
