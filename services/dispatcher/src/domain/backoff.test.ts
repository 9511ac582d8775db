import { describe, expect, it } from 'vitest'
import { afterFailure, DEFAULT_BACKOFF, retryDelayMs } from './backoff.ts'

describe('retryDelayMs', () => {
  it('doubles per attempt, with jitter between half and the whole step, capped', () => {
    const policy = { firstDelayMs: 1_000, maxDelayMs: 60_000, retryForMs: 3_600_000 }
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, 0, policy))).toEqual([500, 1_000, 2_000, 4_000])
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, 0.999999, policy))).toEqual([1_000, 2_000, 4_000, 8_000])
    expect(retryDelayMs(30, 0.5, policy)).toBe(45_000)
    expect(retryDelayMs(10_000, 1, policy)).toBe(60_000)
  })
})

describe('afterFailure', () => {
  it('retries until DISPATCH_RETRY_HOURS (72 h by default) after the first attempt, the last one at the end', () => {
    const t0 = 1_000_000
    let now = t0
    let attempt = 1
    const attempts = [now]
    for (;;) {
      const next = afterFailure({ attempt, firstAttemptAt: t0, now, random: 0.5 }, DEFAULT_BACKOFF)
      if (next.state === 'failed') break
      expect(next.nextAttemptAt).toBeGreaterThan(now)
      now = next.nextAttemptAt
      attempts.push(now)
      attempt++
    }
    expect(attempts.at(-1)).toBe(t0 + 72 * 3_600_000)
    // 10 s, 20 s, … up to 6 h steps: a few dozen calls over three days, not thousands.
    expect(attempts.length).toBeGreaterThan(15)
    expect(attempts.length).toBeLessThan(30)
  })
})
