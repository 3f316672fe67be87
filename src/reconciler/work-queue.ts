/**
 * A keyed work queue with controller-runtime's semantics: a key is processed by at most one
 * worker at a time, duplicate adds collapse, a key added while it is being processed is
 * processed again afterwards, and concurrency across keys is bounded.
 */

/** What processing a key asks for next. */
export interface ProcessResult {
  /** Process the key again after this many ms (absent: only on the next add or resync). */
  requeueAfterMs?: number
}

/** The queue. `process` must not throw (the controller catches and decides). */
export class WorkQueue {
  private readonly pending = new Set<string>()
  private readonly active = new Set<string>()
  private readonly dirty = new Set<string>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private running = 0
  private closed = false
  private idleWaiters: (() => void)[] = []

  /**
   * @param process - handles one key
   * @param concurrency - most keys processed at once
   */
  constructor(
    private readonly process: (key: string) => Promise<ProcessResult>,
    private readonly concurrency: number,
  ) {}

  /** Adds a key now (cancels a delayed add of the same key). */
  add(key: string): void {
    if (this.closed) return
    const timer = this.timers.get(key)
    if (timer) {
      clearTimeout(timer)
      this.timers.delete(key)
    }
    if (this.active.has(key)) {
      this.dirty.add(key)
      return
    }
    this.pending.add(key)
    this.pump()
  }

  /** Adds a key after `delayMs` unless it is added sooner. */
  addAfter(key: string, delayMs: number): void {
    if (this.closed || this.timers.has(key)) return
    const timer = setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, delayMs)
    timer.unref()
    this.timers.set(key, timer)
  }

  /** Stops taking keys and waits for the keys being processed to finish. */
  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    this.pending.clear()
    if (this.running > 0) await new Promise<void>((r) => this.idleWaiters.push(r))
  }

  private pump(): void {
    while (this.running < this.concurrency && !this.closed) {
      const key = [...this.pending].find((k) => !this.active.has(k))
      if (key === undefined) return
      this.pending.delete(key)
      this.active.add(key)
      this.running++
      void this.process(key)
        .then(
          (result) => result,
          (): ProcessResult => ({ requeueAfterMs: 5_000 }),
        )
        .then((result) => {
          this.active.delete(key)
          this.running--
          if (this.dirty.delete(key)) this.add(key)
          else if (result.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs)
          if (this.running === 0 && (this.closed || this.pending.size === 0)) {
            for (const w of this.idleWaiters.splice(0)) w()
          }
          this.pump()
        })
    }
  }
}
