import { clickIdTime } from '@clickjoin/click-id'
import {
  clickV1Contract,
  deadLetterMessage,
  decodeEvent,
  postbackV1Contract,
  type ClickV1,
  type TopicNames,
} from '@clickjoin/contracts'
import {
  createBatchConsumer,
  type BatchConsumer,
  type EventProducer,
  type Kafka,
  type KafkaMessage,
  type PartitionBatch,
} from '@clickjoin/kafka'
import type { ConversionAttributor } from './attribution.ts'
import type { AttributorMetrics } from './metrics.ts'
import type { OutboxEntry, OutboxPublisher } from './outbox.ts'
import { parkedInOrder, type Candidate } from './planning.ts'
import type { AttributorStore } from './store.ts'
import { createUncommittedTracker } from './uncommitted.ts'
import type { Waits } from './waits.ts'

/** Postbacks decided per round (one read, one lookup, one commit). */
const ROUND_SIZE = 1_000
/**
 * A batch uncommitted this long without failing is waiting on a call that does not return:
 * health() logs a warning naming the calls in flight, at most every STALLED_AFTER_S.
 */
const STALLED_AFTER_S = 30

export interface Log {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface AttributorConsumerDeps {
  kafka: Kafka
  producer: EventProducer
  store: AttributorStore
  attributor: ConversionAttributor
  outbox: OutboxPublisher
  metrics: AttributorMetrics
  log: Log
  /** The calls in flight, named when a batch stays uncommitted (see STALLED_AFTER_S). */
  waits?: Waits
  /** Told of one click per recorded batch: the sample the cold-tier lag probe follows. */
  onClicksRecorded?(sample: { clickId: string; createdAtMs: number; recordedAtMs: number }): void
}

export interface AttributorConsumerSettings {
  topics: TopicNames
  groupId: string
  partitionsConsumedConcurrently: number
  sessionTimeoutMs?: number
  /**
   * The hot period: how long a postback's decision record (`b:`) guards it against being
   * decided again. Health fails when a batch has gone uncommitted for half of it.
   */
  hotSeconds: number
  /** Longest pause between retries of a batch that failed (ClickHouse or Redis unreachable); short, so parked postbacks do not outwait their grace while clicks wait to be recorded. */
  maxRetryBackoffMs?: number
}

/**
 * Consumer wiring: clicks and conversions in one group, so a partition of each with the same
 * number is handled by one member. A batch's offsets are committed only after its decisions
 * are in Redis and their outcomes acknowledged by Kafka; a batch that fails (ClickHouse
 * unreachable for a cold lookup, Redis down) waits and is retried in place, uncommitted.
 */
export function createAttributorConsumer(deps: AttributorConsumerDeps, settings: AttributorConsumerSettings): BatchConsumer {
  const { producer, store, attributor, outbox, metrics, log } = deps
  const { topics } = settings
  let lastFailure: string | undefined
  let lastStallWarningMs = 0
  const uncommitted = createUncommittedTracker()
  /** Per partition, the background publication of its latest decisions (never rejects). */
  const publishing = new Map<string, Promise<void>>()

  function partitionOf(batch: PartitionBatch): string {
    return `${batch.topic}/${batch.partition}`
  }

  /**
   * Publishes a batch's freshly decided outcomes after the batch's offsets may be committed:
   * the outbox (written by the same script as the decisions) already guarantees they reach
   * Kafka, so the offsets need only the Redis commit. Waits for the partition's previous
   * publication first: at most one in flight per partition, in batch order, and a broker that
   * falls behind slows the partition down instead of piling up sends. A failure leaves the
   * entries in the outbox for the background drain (entries older than 10 s).
   */
  async function publishBehind(batch: PartitionBatch, entries: OutboxEntry[]): Promise<void> {
    const key = partitionOf(batch)
    const previous = publishing.get(key)
    if (previous) await previous
    if (entries.length === 0) return
    const next = outbox.publish(entries).catch((err: unknown) => {
      metrics.publishFailures.inc()
      log.warn({ topic: batch.topic, partition: batch.partition, err: err instanceof Error ? err.message : String(err) }, 'publishing outcomes failed; the outbox drain retries them')
    })
    publishing.set(key, next)
    void next.finally(() => {
      if (publishing.get(key) === next) publishing.delete(key)
    })
  }

  async function sendDeadLetters(batch: PartitionBatch, failures: { message: KafkaMessage; reason: string }[]): Promise<void> {
    if (failures.length === 0) return
    await Promise.all(
      failures.map(({ message, reason }) => {
        log.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason }, 'dead-lettered message')
        return producer.send(
          topics.deadLetter,
          deadLetterMessage({ sourceTopic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value, reason }),
        )
      }),
    )
    metrics.deadLetters.inc({ topic: batch.topic }, failures.length)
  }

  async function attributeConversionBatch(batch: PartitionBatch): Promise<void> {
    const failures: { message: KafkaMessage; reason: string }[] = []
    const candidates: Candidate[] = []
    for (const message of batch.messages) {
      // One string for the decoder and the copy kept for parking.
      const json = message.value?.toString('utf8')
      const decoded = decodeEvent(postbackV1Contract, json)
      if (!decoded.ok) failures.push({ message, reason: decoded.reason })
      else candidates.push({ postback: decoded.value, json: json!, offset: message.offset, parkedDeadlineMs: undefined })
    }
    await sendDeadLetters(batch, failures)
    // In rounds of ROUND_SIZE, one after the other: a fetch of several MB holds over 10,000
    // postbacks, and one script call of that size keeps every other partition's work waiting.
    await retried(batch, async () => {
      await attributor.attributeInRounds(candidates, ROUND_SIZE, (appended) => publishBehind(batch, appended))
    })
  }

  /** Records clicks, then decides the postbacks that were waiting for them. */
  async function recordClickBatch(batch: PartitionBatch): Promise<void> {
    const failures: { message: KafkaMessage; reason: string }[] = []
    const clicks: ClickV1[] = []
    for (const message of batch.messages) {
      const decoded = decodeEvent(clickV1Contract, message.value)
      if (!decoded.ok) failures.push({ message, reason: decoded.reason })
      else clicks.push(decoded.value)
    }
    await sendDeadLetters(batch, failures)
    if (clicks.length === 0) return
    await retried(batch, async () => {
      const nowMs = Date.now()
      // Ingest minted these IDs: their time is read without the MAC (a forged one could only
      // be stored, never reached: every postback's click ID is verified before any lookup).
      const records = clicks.map((click) => ({ click, clickIdCreatedAtMs: clickIdTime(click.click_id) }))
      const parked = await store.recordClicks(records)
      metrics.clicks.inc(clicks.length)
      const sample = records.find((r) => r.clickIdCreatedAtMs !== undefined)
      if (sample) deps.onClicksRecorded?.({ clickId: sample.click.click_id, createdAtMs: sample.clickIdCreatedAtMs!, recordedAtMs: nowMs })
      // In the order they were received, so a pending → approved pair stays in that order.
      const waiting = parked.flatMap((entries) => parkedInOrder(entries))
      if (waiting.length === 0) return
      await publishBehind(batch, await attributor.attribute(waiting))
    })
  }

  /**
   * Runs `work` until it succeeds while this member still owns the partition. Every step is
   * idempotent (compare-and-set decisions, replayed outcomes), so a retry after a partial
   * success decides nothing twice. Losing the partition ends the loop with the error: the
   * batch is uncommitted and its new owner takes it over.
   */
  async function retried(batch: PartitionBatch, work: () => Promise<void>): Promise<void> {
    const maxBackoffMs = settings.maxRetryBackoffMs ?? 1_000
    // kafkajs heartbeats only between batches: a batch that waits for ClickHouse or works
    // longer than the session timeout would otherwise cost this member its partitions.
    const pump = setInterval(() => {
      batch.heartbeat().catch(() => undefined)
    }, 1_000)
    const handled = uncommitted.begin(partitionOf(batch), BigInt(batch.messages[0]?.offset ?? '0'), Date.now())
    try {
      await retryUntilDone(batch, work, maxBackoffMs)
    } finally {
      // Also when it throws (the partition was lost): the batch is no longer this member's to
      // commit. Should it come back uncommitted, begin() keeps the time it was first taken up.
      handled()
      clearInterval(pump)
    }
  }

  async function retryUntilDone(batch: PartitionBatch, work: () => Promise<void>, maxBackoffMs: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await work()
        lastFailure = undefined
        return
      } catch (err) {
        lastFailure = err instanceof Error ? err.message : String(err)
        if (!batch.isActive()) throw err
        const waitMs = Math.min(maxBackoffMs, 100 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2)
        log.warn({ topic: batch.topic, partition: batch.partition, attempt, err: lastFailure }, `batch failed; retrying in ${Math.round(waitMs)} ms`)
        await new Promise((resolve) => setTimeout(resolve, waitMs))
        await batch.heartbeat()
      }
    }
  }

  const consumer = createBatchConsumer(deps.kafka, {
    groupId: settings.groupId,
    topics: [topics.clicks, topics.conversions],
    fromBeginning: true,
    partitionsConsumedConcurrently: settings.partitionsConsumedConcurrently,
    ...(settings.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: settings.sessionTimeoutMs }),
    handleBatch: (batch) => (batch.topic === topics.clicks ? recordClickBatch(batch) : attributeConversionBatch(batch)),
  })
  return {
    id: consumer.id,
    start: () => consumer.start(),
    async stop() {
      await consumer.stop()
      await Promise.all(publishing.values())
    },
    crashes: () => consumer.crashes(),
    health() {
      const health = consumer.health()
      const nowMs = Date.now()
      const age = uncommitted.oldestSeconds(nowMs)
      metrics.uncommittedBatchAge.set(age)
      // Called every few seconds (the service's gauge refresh): also the stall watchdog.
      if (age > STALLED_AFTER_S && nowMs - lastStallWarningMs > STALLED_AFTER_S * 1000) {
        lastStallWarningMs = nowMs
        const waitingOn = deps.waits?.describe(nowMs, (STALLED_AFTER_S / 2) * 1000) || 'no call in flight that long'
        const completed = deps.waits?.completedSinceLast() || 'none'
        log.warn(
          { ageSeconds: Math.round(age), waitingOn, completedSinceLastWarning: completed, lastFailure },
          'a batch has gone uncommitted without failing: the calls in flight longest, and those completed meanwhile',
        )
      }
      if (age > settings.hotSeconds / 2) {
        return {
          ok: false,
          detail: `a batch has gone uncommitted for ${Math.round(age)} s, more than half the hot period (${settings.hotSeconds} s): its decision records expire with the hot period`,
        }
      }
      if (health.ok && lastFailure) return { ok: true, detail: `${health.detail}; retrying a batch: ${lastFailure}` }
      return health
    },
  }
}
