import { describe, expect, it } from 'vitest'
import { createUncommittedTracker } from './uncommitted.ts'

describe('the age of the oldest uncommitted batch', () => {
  it('is 0 with nothing in hand and grows while a batch is retried in place', () => {
    const tracker = createUncommittedTracker()
    expect(tracker.oldestSeconds(1_000)).toBe(0)
    const done = tracker.begin('conversions/0', 100n, 1_000)
    expect(tracker.oldestSeconds(31_000)).toBe(30)
    done()
    expect(tracker.oldestSeconds(31_000)).toBe(0)
  })

  it('keeps counting from the first attempt when the same offsets come back (a failed commit)', () => {
    const tracker = createUncommittedTracker()
    tracker.begin('conversions/0', 100n, 1_000)()
    tracker.begin('conversions/0', 100n, 61_000)
    expect(tracker.oldestSeconds(61_000)).toBe(60)
  })

  it('starts over once the partition moves past the batch, and takes the oldest partition', () => {
    const tracker = createUncommittedTracker()
    tracker.begin('conversions/0', 100n, 1_000)()
    tracker.begin('conversions/0', 200n, 50_000)
    tracker.begin('clicks/1', 7n, 40_000)
    expect(tracker.oldestSeconds(60_000)).toBe(20)
    tracker.begin('clicks/1', 7n, 60_000)()
    expect(tracker.oldestSeconds(60_000)).toBe(10)
  })
})
