import { describe, expect, it } from 'vitest'
import { createBatchWriter, deduplicationTokenFor, type BatchWriterOptions, type InsertBlock } from './writer.ts'
import { waitFor } from '@clickjoin/local-stack/testing'

const range = (partition: number, first: number, last: number) => ({
  topic: 'clicks',
  partition,
  firstOffset: String(first),
  lastOffset: String(last),
})

function writerWith(insert: (block: InsertBlock) => Promise<void>, overrides: Partial<BatchWriterOptions> = {}) {
  return createBatchWriter({
    maxRows: 1_000,
    maxBytes: 1_000_000,
    maxWaitMs: 1_000,
    quietMs: 10,
    retryMaxBackoffMs: 50,
    insert,
    ...overrides,
  })
}

describe('batch writer', () => {
  it('joins the partition batches of one fetch round into one insert per table', async () => {
    const inserts: InsertBlock[] = []
    const writer = writerWith(async (block) => void inserts.push(block))
    await Promise.all([
      writer.write('clicks', range(0, 0, 1), [{ id: 1 }, { id: 2 }], 20),
      writer.write('clicks', range(1, 10, 10), [{ id: 3 }], 10),
      writer.write('postbacks', range(0, 5, 5), [{ id: 4 }], 10),
    ])
    expect(inserts.map((b) => [b.table, b.rows.length])).toEqual([
      ['clicks', 3],
      ['postbacks', 1],
    ])
    expect(inserts[0]?.deduplicationToken).toBe(deduplicationTokenFor('clicks', [range(1, 10, 10), range(0, 0, 1)]))
    expect(inserts[1]?.deduplicationToken).toBe('postbacks:clicks/0/5-5')
  })

  it('with no quiet wait, inserts a round as soon as the event loop turns: one insert per turn, none held', async () => {
    const inserts: number[] = []
    const writer = writerWith(async (block) => void inserts.push(block.rows.length), { quietMs: 0, maxWaitMs: 60_000 })
    // One fetch round: batches handed over in the same turn (microtasks apart).
    const round = [writer.write('clicks', range(0, 0, 1), [{}, {}], 20)]
    await Promise.resolve()
    round.push(writer.write('clicks', range(1, 0, 2), [{}, {}, {}], 30))
    await Promise.all(round)
    expect(inserts).toEqual([5])
    // The next round, a later turn, is its own insert and is not held for the 60 s timer.
    await writer.write('clicks', range(0, 2, 2), [{}], 10)
    expect(inserts).toEqual([5, 1])
    expect(writer.pendingRows()).toBe(0)
  })

  it("keeps a table's inserts minIntervalMs apart: rounds arriving meanwhile join one insert", async () => {
    const inserts: { rows: number; at: number }[] = []
    const started = performance.now()
    const writer = writerWith(async (block) => void inserts.push({ rows: block.rows.length, at: performance.now() - started }), {
      quietMs: 0,
      minIntervalMs: 200,
      maxWaitMs: 60_000,
    })
    await writer.write('clicks', range(0, 0, 0), [{}], 10) // the first round goes at once
    const second = writer.write('clicks', range(0, 1, 1), [{}], 10)
    await new Promise((resolve) => setTimeout(resolve, 50))
    const third = writer.write('clicks', range(0, 2, 3), [{}, {}], 10) // a later round, same wait
    await Promise.all([second, third])
    expect(inserts.map((i) => i.rows)).toEqual([1, 3])
    expect(inserts[1]!.at - inserts[0]!.at).toBeGreaterThanOrEqual(190)
    // A big round (an eighth of maxBytes or more: catching up) does not wait.
    const before = performance.now()
    await writer.write('clicks', range(0, 4, 4), [{}], 125_000)
    expect(performance.now() - before).toBeLessThan(150)
    expect(inserts.map((i) => i.rows)).toEqual([1, 3, 1])
  })

  it('joins the rounds that arrive while an insert of the table runs into one insert after it', async () => {
    const inserts: number[] = []
    const releases: (() => void)[] = []
    const writer = writerWith(
      (block) => {
        inserts.push(block.rows.length)
        return new Promise<void>((resolve) => releases.push(resolve))
      },
      { quietMs: 0, maxWaitMs: 60_000 },
    )
    const turn = () => new Promise((resolve) => setImmediate(resolve))
    const first = writer.write('clicks', range(0, 0, 0), [{}], 10)
    await turn()
    expect(inserts).toEqual([1]) // the first round goes at once
    const second = writer.write('clicks', range(0, 1, 1), [{}], 10)
    await turn()
    const third = writer.write('clicks', range(0, 2, 3), [{}, {}], 10)
    await turn()
    expect(inserts).toEqual([1]) // two later rounds wait for the running insert
    releases[0]!()
    await first
    await waitFor(() => inserts.length, (n) => n === 2, 1_000, 'the joined insert')
    expect(inserts).toEqual([1, 3])
    releases[1]!()
    await Promise.all([second, third])
    expect(writer.pendingRows()).toBe(0)
  })

  it('gives each table its own minimum interval when minIntervalMs is a function', async () => {
    const inserts: string[] = []
    const writer = writerWith(async (block) => void inserts.push(`${block.table}:${block.rows.length}`), {
      quietMs: 0,
      minIntervalMs: (table) => (table === 'clicks' ? 60_000 : 0),
      maxWaitMs: 60_000,
    })
    await Promise.all([writer.write('clicks', range(0, 0, 0), [{}], 10), writer.write('conversions', range(1, 0, 0), [{}], 10)])
    const clicksLater = writer.write('clicks', range(0, 1, 1), [{}], 10)
    await writer.write('conversions', range(1, 1, 1), [{}], 10) // no interval: the round goes at once
    const clicksLatest = writer.write('clicks', range(0, 2, 3), [{}, {}], 10) // joins the waiting clicks round
    expect(inserts).toEqual(['clicks:1', 'conversions:1', 'conversions:1'])
    await writer.flush()
    await Promise.all([clicksLater, clicksLatest])
    expect(inserts).toEqual(['clicks:1', 'conversions:1', 'conversions:1', 'clicks:3'])
  })

  it('starts a new insert when rows or bytes would pass the limit, never splitting one range', async () => {
    const inserts: number[] = []
    const writer = writerWith(async (block) => void inserts.push(block.rows.length), { maxRows: 3, maxBytes: 100 })
    await Promise.all([
      writer.write('clicks', range(0, 0, 1), [{}, {}], 10),
      writer.write('clicks', range(1, 0, 1), [{}, {}], 10), // 4 rows > 3: the first two go alone
      writer.write('clicks', range(2, 0, 0), [{}], 200), // the bytes would pass too: a block of its own
    ])
    expect(inserts).toEqual([2, 2, 1])
  })

  it('resolves nothing while ClickHouse fails, retries the same block and token, then resolves', async () => {
    const attempts: string[] = []
    let down = true
    const writer = writerWith(async (block) => {
      attempts.push(block.deduplicationToken)
      if (down) throw new Error('connection refused')
    })
    let stored = false
    const write = writer.write('clicks', range(0, 7, 9), [{ id: 1 }], 10).then(() => (stored = true))
    while (attempts.length < 4) await new Promise((resolve) => setTimeout(resolve, 5))
    expect(stored).toBe(false)
    expect(writer.health().ok).toBe(false)
    expect(writer.pendingRows()).toBe(1)
    down = false
    await write
    expect(new Set(attempts)).toEqual(new Set(['clicks:clicks/0/7-9']))
    expect(writer.health().ok).toBe(true)
    expect(writer.pendingRows()).toBe(0)
  })

  it('flushes at once on demand instead of waiting for the timers', async () => {
    const inserts: number[] = []
    const writer = writerWith(async (block) => void inserts.push(block.rows.length), { maxWaitMs: 60_000, quietMs: 60_000 })
    const write = writer.write('clicks', range(0, 0, 0), [{}], 1)
    await writer.flush()
    await write
    expect(inserts).toEqual([1])
  })
})
