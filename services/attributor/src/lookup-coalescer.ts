/**
 * Concurrent lookups by ID, coalesced into fewer queries. A cold-tier query costs ClickHouse
 * mostly a fixed amount (parsing, a session, the HTTP request), not per ID, and the rounds of
 * every partition ask for their own few IDs at once: here, while one query is in flight, later
 * calls wait, and when it completes one query asks for the union of their IDs.
 *
 * - Fresh answers: a call never joins a query sent before it was made. It goes out at once if
 *   nothing is in flight, else in the first query sent after the one in flight completes, so
 *   its answer is at least as new as a query sent at the time of its call.
 * - Bounded queries: the union is cut into queries of at most `maxIdsPerQuery` IDs, sent
 *   together (they are one step: the next step waits for all of them).
 * - A failed query fails exactly the calls that needed one of its IDs; the others get their
 *   answers, and the calls queued behind it still go out.
 */
export interface LookupCoalescer<V> {
  /** The values found for these IDs (a map restricted to them; an ID not found is absent). */
  lookup(ids: readonly string[]): Promise<Map<string, V>>
}

interface WaitingCall<V> {
  ids: readonly string[]
  resolve(found: Map<string, V>): void
  reject(err: unknown): void
}

export function createLookupCoalescer<V>(
  query: (ids: readonly string[]) => Promise<Map<string, V>>,
  maxIdsPerQuery: number,
): LookupCoalescer<V> {
  if (!Number.isInteger(maxIdsPerQuery) || maxIdsPerQuery < 1) throw new RangeError(`maxIdsPerQuery must be a positive integer, got ${maxIdsPerQuery}`)
  let waiting: WaitingCall<V>[] = []
  let inFlight = false

  function sendWaiting(): void {
    const calls = waiting
    waiting = []
    inFlight = true
    const union = [...new Set(calls.flatMap((c) => c.ids))]
    const queries: Promise<Map<string, V>>[] = []
    const queryOf = new Map<string, Promise<Map<string, V>>>()
    for (let i = 0; i < union.length; i += maxIdsPerQuery) {
      const ids = union.slice(i, i + maxIdsPerQuery)
      // Promise.resolve().then: a query function that throws synchronously fails its callers too.
      const sent = Promise.resolve(ids).then(query)
      queries.push(sent)
      for (const id of ids) queryOf.set(id, sent)
    }
    for (const call of calls) {
      void Promise.all(call.ids.map((id) => queryOf.get(id)!)).then((answers) => {
        const found = new Map<string, V>()
        call.ids.forEach((id, i) => {
          const value = answers[i]!.get(id)
          if (value !== undefined) found.set(id, value)
        })
        call.resolve(found)
      }, call.reject)
    }
    void Promise.allSettled(queries).then(() => {
      inFlight = false
      if (waiting.length > 0) sendWaiting()
    })
  }

  return {
    lookup(ids) {
      if (ids.length === 0) return Promise.resolve(new Map())
      return new Promise<Map<string, V>>((resolve, reject) => {
        waiting.push({ ids, resolve, reject })
        if (!inFlight) sendWaiting()
      })
    },
  }
}
