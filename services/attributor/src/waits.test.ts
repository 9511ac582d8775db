import { describe, expect, it } from 'vitest'
import { createWaits } from './waits.ts'

describe('createWaits', () => {
  it('names the calls in flight past the threshold, longest first, and forgets them once settled', async () => {
    const waits = createWaits()
    let finishRedis!: () => void
    let failCold!: (err: Error) => void
    const startedAt = Date.now()
    const redis = waits.track('commit', () => new Promise<void>((resolve) => (finishRedis = resolve)))
    const cold = waits.track('cold_conversions', () => new Promise<void>((_, reject) => (failCold = reject)))
    const cold2 = waits.track('cold_conversions', () => new Promise<void>(() => undefined))
    expect(waits.describe(startedAt + 40_000, 30_000)).toBe('commit 40 s, cold_conversions 40 s (2 calls)')
    expect(waits.describe(startedAt + 10_000, 30_000)).toBe('')
    finishRedis()
    await redis
    failCold(new Error('unreachable'))
    await expect(cold).rejects.toThrow('unreachable')
    expect(waits.describe(startedAt + 40_000, 30_000)).toBe('cold_conversions 40 s')
    expect(waits.completedSinceLast()).toBe('commit 1, cold_conversions 1')
    expect(waits.completedSinceLast()).toBe('')
    void cold2
  })
})
