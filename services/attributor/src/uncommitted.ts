/**
 * How long the oldest batch a member handles has gone uncommitted, per partition. A batch's
 * offsets are committed right after it is handled; a batch comes back only when that did
 * not happen: retried in place (Redis or ClickHouse failing), or redelivered after a failed
 * offset commit. Its postbacks' decision records (`b:`) guard them against a second decision
 * for the hot period only, so this age must stay well below it (docs/delivery.md).
 */
export interface UncommittedTracker {
  /** A batch of `partition` starting at `firstOffset` is being handled; returns its `done()`. */
  begin(partition: string, firstOffset: bigint, nowMs: number): () => void
  /** Seconds since the oldest batch still in hand (or handed back) was first taken up; 0 if none. */
  oldestSeconds(nowMs: number): number
}

export function createUncommittedTracker(): UncommittedTracker {
  const byPartition = new Map<string, { firstOffset: bigint; sinceMs: number; done: boolean }>()
  return {
    begin(partition, firstOffset, nowMs) {
      const seen = byPartition.get(partition)
      // The same or an earlier offset again: the earlier attempt was never committed.
      const entry =
        seen !== undefined && firstOffset <= seen.firstOffset
          ? { firstOffset: seen.firstOffset, sinceMs: seen.sinceMs, done: false }
          : { firstOffset, sinceMs: nowMs, done: false }
      byPartition.set(partition, entry)
      return () => {
        entry.done = true
      }
    },
    oldestSeconds(nowMs) {
      let oldest = 0
      for (const entry of byPartition.values()) if (!entry.done) oldest = Math.max(oldest, (nowMs - entry.sinceMs) / 1000)
      return oldest
    },
  }
}
