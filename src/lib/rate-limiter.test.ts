import { describe, expect, it } from 'vitest'
import { RateLimiter } from './rate-limiter.js'

describe('RateLimiter', () => {
  it('allows a burst of the rate, then refills continuously, per key', () => {
    let now = 0
    const limiter = new RateLimiter(10, () => now)
    const burst = Array.from({ length: 12 }, () => limiter.take('a'))
    expect(burst.filter(Boolean)).toHaveLength(10)
    expect(limiter.take('b')).toBe(true)
    now += 100 // 0.1 s refills one request
    expect(limiter.take('a')).toBe(true)
    expect(limiter.take('a')).toBe(false)
    now += 5_000
    expect(Array.from({ length: 11 }, () => limiter.take('a')).filter(Boolean)).toHaveLength(10)
  })
})
