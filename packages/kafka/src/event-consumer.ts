import { Counter, Gauge, type Registry } from 'prom-client'
import type { Kafka, KafkaMessage } from 'kafkajs'
import { deadLetterMessage, decodeEvent, type EventContract, type EventOf } from '@clickjoin/contracts'
import {
  createBatchConsumer,
  GROUP_HEARTBEAT_INTERVAL_MS,
  type BatchConsumer,
  type BatchConsumerOptions,
  type DeferredCommit,
  type PartitionBatch,
} from './consumer.ts'
import { createLagProbe } from './lag.ts'

/** A topic this consumer reads and the contract its messages must match. */
export interface EventInput {
  topic: string
  contract: EventContract
}

export interface DecodedMessage<V> {
  message: KafkaMessage
  value: V
}

/** One partition batch with every message that matched its contract. */
export interface EventBatch<I extends EventInput> {
  input: I
  topic: string
  partition: number
  /** In offset order; messages that did not decode are already on their way to the dead-letter topic. */
  events: DecodedMessage<EventOf<I['contract']>>[]
  /** A message that decoded but cannot be processed: dead-lettered with `reason`, committed with the batch. */
  deadLetter(message: KafkaMessage, reason: string): void
  heartbeat(): Promise<void>
  isActive(): boolean
}

/** What dead letters are sent through: the service's batching producer. */
export interface DeadLetterSender {
  send(topic: string, message: { key: string; value: Buffer }): Promise<void>
}

export interface EventConsumerOptions<I extends EventInput> extends Omit<BatchConsumerOptions, 'topics' | 'handleBatch'> {
  inputs: readonly I[]
  deadLetterTopic: string
  deadLetters: DeadLetterSender
  /**
   * Metrics on this registry, named `<metricPrefix>_…` (e.g. `clickjoin_sink`): events
   * consumed and dead-lettered per topic, restarts, and the group's lag per topic.
   */
  metrics?: { registry: Registry; metricPrefix: string }
  /**
   * Handles the decoded events of one partition batch durably, or throws (the batch is then
   * redelivered, so it must be idempotent). Offsets are committed once it resolved and every
   * dead letter of the batch was acknowledged by Kafka. Or it resolves to a DeferredCommit once it
   * has the events in hand: the offsets are then committed once `stored` resolved and the dead
   * letters were acknowledged, in order per partition (BatchConsumerOptions.handleBatch).
   */
  handleEvents(batch: EventBatch<I>): Promise<void | DeferredCommit>
}

export interface EventConsumer extends BatchConsumer {
  /** Decodes, dead-letters and hands one partition batch to the handler (what the consumer calls; replay tests). */
  handleBatch(batch: PartitionBatch): Promise<void | DeferredCommit>
  /** Partition batches being handled right now or waiting for their deferred commit. */
  batchesInFlight(): number
  /** Fetches nothing more (a shutdown, before the last commits). */
  pauseFetching(): void
  /** Messages after the group's committed offsets, per topic. */
  consumerLag(): Promise<Map<string, number>>
}

/**
 * The one way a service consumes events: decode against the topic's contract, dead-letter
 * what does not match (with the reason, never dropped), count, keep the group membership
 * alive while the handler works, measure lag, and restart after any crash.
 */
export function createEventConsumer<I extends EventInput>(kafka: Kafka, options: EventConsumerOptions<I>): EventConsumer {
  const inputByTopic = new Map<string, I>(options.inputs.map((input) => [input.topic, input]))
  const topics = options.inputs.map((input) => input.topic)
  const lagProbe = createLagProbe(kafka, options.groupId, topics)
  const metrics = options.metrics && createEventConsumerMetrics(options.metrics.registry, options.metrics.metricPrefix, lagProbe)
  let inFlight = 0

  async function handleBatch(batch: PartitionBatch): Promise<void | DeferredCommit> {
    const input = inputByTopic.get(batch.topic)
    if (!input || batch.messages.length === 0) return
    inFlight++
    const deadLetters: Promise<void>[] = []
    const deadLetter = (message: KafkaMessage, reason: string) => {
      metrics?.deadLetters.inc({ topic: batch.topic })
      deadLetters.push(
        options.deadLetters.send(
          options.deadLetterTopic,
          deadLetterMessage({
            sourceTopic: batch.topic,
            partition: batch.partition,
            offset: message.offset,
            key: message.key,
            value: message.value,
            reason: `${input.contract.name}: ${reason}`,
          }),
        ),
      )
    }
    const events: DecodedMessage<EventOf<I['contract']>>[] = []
    for (const message of batch.messages) {
      const decoded = decodeEvent(input.contract, message.value)
      if (decoded.ok) events.push({ message, value: decoded.value as EventOf<I['contract']> })
      else deadLetter(message, decoded.reason)
    }
    metrics?.consumed.inc({ topic: batch.topic }, batch.messages.length)
    // Keep the membership alive while the handler waits on a slow store (the session is 10 s).
    const heartbeats = setInterval(() => void batch.heartbeat().catch(() => undefined), GROUP_HEARTBEAT_INTERVAL_MS)
    try {
      const handled = await options.handleEvents({
        input,
        topic: batch.topic,
        partition: batch.partition,
        events,
        deadLetter,
        heartbeat: batch.heartbeat,
        isActive: batch.isActive,
      })
      if (handled) return { stored: Promise.all([handled.stored, ...deadLetters]).then(() => undefined) }
      await Promise.all(deadLetters)
    } finally {
      clearInterval(heartbeats)
      // A failed handler may leave dead-letter sends pending: never an unhandled rejection.
      for (const sent of deadLetters) sent.catch(() => undefined)
      inFlight--
    }
  }

  const consumer = createBatchConsumer(kafka, {
    ...options,
    topics,
    handleBatch,
    onRestart: (error, delayMs) => {
      metrics?.restarts.inc()
      options.onRestart?.(error, delayMs)
    },
  })
  return {
    ...consumer,
    async stop() {
      await consumer.stop()
      await lagProbe.close().catch(() => undefined)
    },
    handleBatch,
    batchesInFlight: () => inFlight + consumer.pendingCommits(),
    pauseFetching: () => consumer.pauseFetching(),
    consumerLag: () => lagProbe.consumerLag(),
  }
}

function createEventConsumerMetrics(registry: Registry, prefix: string, lagProbe: { consumerLag(): Promise<Map<string, number>> }) {
  return {
    consumed: new Counter({
      name: `${prefix}_events_consumed_total`,
      help: 'Messages consumed, per topic (decoded or dead-lettered)',
      labelNames: ['topic'],
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: `${prefix}_dead_letters_total`,
      help: 'Messages sent to the dead-letter topic, per source topic',
      labelNames: ['topic'],
      registers: [registry],
    }),
    restarts: new Counter({
      name: `${prefix}_consumer_restarts_total`,
      help: 'Consumer crashes, each followed by a restart with backoff',
      registers: [registry],
    }),
    lag: new Gauge({
      name: `${prefix}_consumer_lag_messages`,
      help: 'Messages in the topic after the group’s committed offset, per topic',
      labelNames: ['topic'],
      registers: [registry],
      async collect() {
        // A scrape must not hang on an unreachable broker: no lag figure then.
        const timeout = new Promise<Map<string, number>>((resolve) => setTimeout(() => resolve(new Map()), 2_000).unref())
        const lag = await Promise.race([lagProbe.consumerLag(), timeout]).catch(() => new Map<string, number>())
        for (const [topic, messages] of lag) this.set({ topic }, messages)
      },
    }),
  }
}
