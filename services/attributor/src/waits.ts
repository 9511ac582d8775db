/**
 * What the attributor is waiting for right now: every Redis, ClickHouse and outcome-publishing
 * call in flight, by kind, with its start. A batch that stays uncommitted without failing is
 * waiting on one of these; the watchdog names it (`describe`) instead of leaving an operator
 * with a lag that grows in silence.
 */
export interface Waits {
  track<T>(op: string, work: () => Promise<T>): Promise<T>
  /** The kinds of call in flight for at least `minMs`, longest first: "cold_conversions 95 s (2 calls)". */
  describe(nowMs: number, minMs: number): string
  /**
   * The calls completed since the previous call of this, by kind: "commit 1200, read_postbacks 1200".
   * Many while a batch stays uncommitted is a loop that never ends; none is a call that never returns.
   */
  completedSinceLast(): string
}

export function createWaits(): Waits {
  const inFlight = new Map<number, { op: string; sinceMs: number }>()
  let completed = new Map<string, number>()
  let next = 0
  return {
    async track(op, work) {
      const id = next++
      inFlight.set(id, { op, sinceMs: Date.now() })
      try {
        return await work()
      } finally {
        inFlight.delete(id)
        completed.set(op, (completed.get(op) ?? 0) + 1)
      }
    },
    describe(nowMs, minMs) {
      const byOp = new Map<string, { oldestMs: number; calls: number }>()
      for (const { op, sinceMs } of inFlight.values()) {
        const ageMs = nowMs - sinceMs
        if (ageMs < minMs) continue
        const seen = byOp.get(op)
        byOp.set(op, { oldestMs: Math.max(seen?.oldestMs ?? 0, ageMs), calls: (seen?.calls ?? 0) + 1 })
      }
      return [...byOp]
        .sort(([, a], [, b]) => b.oldestMs - a.oldestMs)
        .map(([op, { oldestMs, calls }]) => `${op} ${Math.round(oldestMs / 1000)} s${calls > 1 ? ` (${calls} calls)` : ''}`)
        .join(', ')
    },
    completedSinceLast() {
      const counts = completed
      completed = new Map()
      return [...counts].map(([op, n]) => `${op} ${n}`).join(', ')
    },
  }
}
