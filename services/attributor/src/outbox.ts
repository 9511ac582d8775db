import type { RedisClient } from '@clickjoin/redis'
import type { EventProducer } from '@clickjoin/kafka'
import type { AttributorMetrics } from './metrics.ts'

type StreamEntry = [id: string, fields: string[]]

/** An outbox entry its writer publishes itself, without reading it back. */
export interface OutboxEntry {
  /** The outbox (stream key) it was appended to: its conversion's shard's. */
  outbox: string
  id: string
  key: string
  value: string
}

export interface OutboxPublisher {
  /**
   * Publishes entries this process just appended (it has them in hand), then deletes them
   * from the outbox once Kafka acknowledged them. Saves reading the stream back on the hot
   * path; anything left behind by a crash is found by drain().
   */
  publish(entries: OutboxEntry[]): Promise<void>
  /**
   * Publishes the outbox's entries to the outcomes topic and deletes each only after Kafka
   * acknowledged it. `olderThanMs` limits it to entries at least that old: the background
   * pass leaves fresh entries to the partition handler that wrote them.
   */
  drain(outboxKey: string, options?: { olderThanMs?: number }): Promise<number>
}

const PAGE = 5_000
/** Bytes per produce call: under the broker's default message.max.bytes (1 MB) for any one partition's share. */
const MAX_CALL_BYTES = 512 * 1024

/**
 * Decisions reach Kafka through a Redis stream written by the same Lua step that records them,
 * so a decision can never exist without its outcome eventually being published. Publishing
 * twice (a crash between the ack and XDEL, two drainers) is harmless: outcomes are idempotent
 * by (conversion_id, version) and a re-published entry is byte-identical.
 */
export function createOutboxPublisher(deps: {
  redis: RedisClient
  producer: EventProducer
  outcomesTopic: string
  metrics: AttributorMetrics
}): OutboxPublisher {
  const { redis, producer, outcomesTopic, metrics } = deps

  /**
   * One produce call per ~512 KB, in order (sendInOrder: no queue, no promise per message; a
   * round's 1,000 outcomes are one call), each resolved once Kafka acknowledged all of it.
   */
  async function produceAll(messages: readonly { key: string; value: string }[]): Promise<void> {
    for (let start = 0; start < messages.length; ) {
      let end = start
      let bytes = 0
      while (end < messages.length && (end === start || bytes + messages[end]!.value.length <= MAX_CALL_BYTES)) bytes += messages[end++]!.value.length
      await producer.sendInOrder(messages.slice(start, end).map((message) => ({ topic: outcomesTopic, message })))
      start = end
    }
  }
  // One drain per outbox at a time in this process: concurrent drains would only duplicate.
  const running = new Map<string, Promise<number>>()

  async function drainOnce(outboxKey: string, olderThanMs: number | undefined): Promise<number> {
    let published = 0
    for (;;) {
      const end = olderThanMs === undefined ? '+' : String(Date.now() - olderThanMs)
      const started = performance.now()
      const entries = (await redis.xrange(outboxKey, '-', end, 'COUNT', PAGE)) as StreamEntry[]
      metrics.redisSeconds.observe({ op: 'outbox_read' }, (performance.now() - started) / 1000)
      if (entries.length === 0) return published
      await produceAll(
        entries.map(([, fields]) => {
          const message = fieldsOf(fields)
          return { key: message.k ?? '', value: message.v ?? '' }
        }),
      )
      metrics.published.inc(entries.length)
      await redis.xdel(outboxKey, ...entries.map(([id]) => id))
      published += entries.length
      if (entries.length < PAGE) return published
    }
  }

  return {
    async publish(entries) {
      if (entries.length === 0) return
      await produceAll(entries)
      metrics.published.inc(entries.length)
      const byOutbox = new Map<string, string[]>()
      for (const e of entries) {
        const ids = byOutbox.get(e.outbox)
        if (ids) ids.push(e.id)
        else byOutbox.set(e.outbox, [e.id])
      }
      const started = performance.now()
      await Promise.all([...byOutbox].map(([outbox, ids]) => redis.xdel(outbox, ...ids)))
      metrics.redisSeconds.observe({ op: 'outbox_delete' }, (performance.now() - started) / 1000)
    },
    drain(outboxKey, options = {}) {
      const previous = running.get(outboxKey) ?? Promise.resolve(0)
      const next = previous.catch(() => 0).then(() => drainOnce(outboxKey, options.olderThanMs))
      running.set(outboxKey, next)
      void next.finally(() => {
        if (running.get(outboxKey) === next) running.delete(outboxKey)
      }).catch(() => undefined)
      return next
    },
  }
}

function fieldsOf(flat: string[]): Record<string, string> {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) record[flat[i]!] = flat[i + 1]!
  return record
}
