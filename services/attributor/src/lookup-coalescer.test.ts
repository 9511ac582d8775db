import { describe, expect, it } from 'vitest'
import { createLookupCoalescer } from './lookup-coalescer.ts'

/** A query function whose every query waits until the test answers or fails it. */
function controlledQueries() {
  const sent: { ids: string[]; answer(values: Record<string, number>): void; fail(err: Error): void }[] = []
  const query = (ids: readonly string[]) =>
    new Promise<Map<string, number>>((resolve, reject) => {
      sent.push({ ids: [...ids], answer: (values) => resolve(new Map(Object.entries(values))), fail: reject })
    })
  return { sent, query }
}

/** Lets every pending promise callback run (the coalescer sends the next query from one). */
const settle = () => new Promise((r) => setImmediate(r))

/** The outcome of a lookup, readable at any time without awaiting it. */
function track<T>(promise: Promise<T>) {
  const state: { value?: T; error?: unknown; done: boolean } = { done: false }
  void promise.then(
    (value) => Object.assign(state, { value, done: true }),
    (error: unknown) => Object.assign(state, { error, done: true }),
  )
  return state
}

describe('createLookupCoalescer', () => {
  it('sends a call at once when nothing is in flight, and answers it with its own IDs only', async () => {
    const { sent, query } = controlledQueries()
    const coalescer = createLookupCoalescer(query, 100)
    const call = track(coalescer.lookup(['a', 'b']))
    await settle()
    expect(sent.map((q) => q.ids)).toEqual([['a', 'b']])
    sent[0]!.answer({ a: 1 })
    await settle()
    expect(call).toEqual({ done: true, value: new Map([['a', 1]]) })
  })

  it('batches the calls made while a query is in flight into one query sent when it completes', async () => {
    const { sent, query } = controlledQueries()
    const coalescer = createLookupCoalescer(query, 100)
    const first = track(coalescer.lookup(['a']))
    await settle()
    const second = track(coalescer.lookup(['b', 'c']))
    const third = track(coalescer.lookup(['c', 'd']))
    await settle()
    expect(sent.map((q) => q.ids)).toEqual([['a']]) // the later calls wait

    sent[0]!.answer({ a: 1, b: 99 }) // b in the first answer must not reach the second call: it asked later
    await settle()
    expect(first).toEqual({ done: true, value: new Map([['a', 1]]) })
    expect(second.done).toBe(false)
    expect(sent.map((q) => q.ids)).toEqual([['a'], ['b', 'c', 'd']]) // one query, the union, each ID once

    sent[1]!.answer({ b: 2, c: 3, d: 4 })
    await settle()
    expect(second).toEqual({ done: true, value: new Map([['b', 2], ['c', 3]]) })
    expect(third).toEqual({ done: true, value: new Map([['c', 3], ['d', 4]]) })
  })

  it('never lets a call join a query already sent, even one asking for the same IDs', async () => {
    const { sent, query } = controlledQueries()
    const coalescer = createLookupCoalescer(query, 100)
    const before = track(coalescer.lookup(['a']))
    await settle()
    const after = track(coalescer.lookup(['a']))
    sent[0]!.answer({ a: 1 })
    await settle()
    expect(before).toEqual({ done: true, value: new Map([['a', 1]]) })
    expect(after.done).toBe(false) // it waits for a query sent after it asked
    expect(sent).toHaveLength(2)
    sent[1]!.answer({ a: 2 })
    await settle()
    expect(after).toEqual({ done: true, value: new Map([['a', 2]]) })
  })

  it('fails only the calls a failed query served, and still sends the calls queued behind it', async () => {
    const { sent, query } = controlledQueries()
    const coalescer = createLookupCoalescer(query, 2)
    const first = track(coalescer.lookup(['x']))
    await settle()
    // Queued: with at most 2 IDs per query, the union [a, b, c] goes out as [a, b] and [c].
    const onA = track(coalescer.lookup(['a']))
    const onBC = track(coalescer.lookup(['b', 'c']))
    const onC = track(coalescer.lookup(['c']))
    sent[0]!.answer({})
    await settle()
    expect(sent.map((q) => q.ids)).toEqual([['x'], ['a', 'b'], ['c']])
    const behind = track(coalescer.lookup(['e']))

    sent[1]!.fail(new Error('ClickHouse unreachable'))
    sent[2]!.answer({ c: 3 })
    await settle()
    expect(first).toEqual({ done: true, value: new Map() })
    expect(onA).toEqual({ done: true, error: new Error('ClickHouse unreachable') })
    expect(onBC).toEqual({ done: true, error: new Error('ClickHouse unreachable') }) // b's query failed
    expect(onC).toEqual({ done: true, value: new Map([['c', 3]]) }) // its query answered
    expect(sent.map((q) => q.ids)).toEqual([['x'], ['a', 'b'], ['c'], ['e']]) // the queue drains

    sent[3]!.answer({ e: 5 })
    await settle()
    expect(behind).toEqual({ done: true, value: new Map([['e', 5]]) })
  })

  it('fails the callers of a query function that throws at once, then goes on', async () => {
    let calls = 0
    const coalescer = createLookupCoalescer((ids) => {
      if (calls++ === 0) throw new Error('bad query')
      return Promise.resolve(new Map(ids.map((id) => [id, id.length])))
    }, 10)
    await expect(coalescer.lookup(['a'])).rejects.toThrow('bad query')
    await expect(coalescer.lookup(['bb'])).resolves.toEqual(new Map([['bb', 2]]))
  })

  it('keeps every query within the bound, a single call larger than it included', async () => {
    const { sent, query } = controlledQueries()
    const coalescer = createLookupCoalescer(query, 3)
    const ids = Array.from({ length: 7 }, (_, i) => `id${i}`)
    const big = track(coalescer.lookup(ids))
    await settle()
    expect(sent.map((q) => q.ids)).toEqual([ids.slice(0, 3), ids.slice(3, 6), ids.slice(6)])
    sent.forEach((q) => q.answer(Object.fromEntries(q.ids.map((id) => [id, Number(id.slice(2))]))))
    await settle()
    expect(big).toEqual({ done: true, value: new Map(ids.map((id, i) => [id, i])) })
  })

  it('waits for every query of a step before sending the next', async () => {
    const { sent, query } = controlledQueries()
    const coalescer = createLookupCoalescer(query, 1)
    const first = track(coalescer.lookup(['a', 'b']))
    await settle()
    const later = track(coalescer.lookup(['c']))
    sent[0]!.answer({ a: 1 })
    await settle()
    expect(sent).toHaveLength(2) // b's query is still in flight
    sent[1]!.answer({ b: 2 })
    await settle()
    expect(first).toEqual({ done: true, value: new Map([['a', 1], ['b', 2]]) })
    expect(sent.map((q) => q.ids)).toEqual([['a'], ['b'], ['c']])
    sent[2]!.answer({})
    await settle()
    expect(later).toEqual({ done: true, value: new Map() })
  })

  it('answers an empty call without a query, and refuses a bound that is not a positive integer', async () => {
    const { sent, query } = controlledQueries()
    await expect(createLookupCoalescer(query, 5).lookup([])).resolves.toEqual(new Map())
    expect(sent).toHaveLength(0)
    expect(() => createLookupCoalescer(query, 0)).toThrow(RangeError)
    expect(() => createLookupCoalescer(query, 1.5)).toThrow(RangeError)
  })
})
