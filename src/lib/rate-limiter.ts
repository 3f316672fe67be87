/**
 * A token-bucket rate limiter keyed by name (e.g. an environment): each key may take up to
 * `ratePerSecond` requests in any one-second burst, refilled continuously.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()

  /**
   * @param ratePerSecond - requests per second allowed per key (also the burst size), ≥ 1
   * @param now - clock in ms (tests)
   */
  constructor(
    private readonly ratePerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Takes one request for `key`. @returns false when the key is over its rate */
  take(key: string): boolean {
    const now = this.now()
    const bucket = this.buckets.get(key) ?? { tokens: this.ratePerSecond, at: now }
    bucket.tokens = Math.min(
      this.ratePerSecond,
      bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond,
    )
    bucket.at = now
    this.buckets.set(key, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }
}
