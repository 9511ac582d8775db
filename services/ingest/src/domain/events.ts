import {
  clickV1Contract,
  conversionPartitionKey,
  encodeEvent,
  postbackV1Contract,
  type ClickV1,
  type PostbackV1,
  type TopicNames,
} from '@clickjoin/contracts'
import { MessageWithdrawnError, type EventProducer, type OutgoingMessage } from '@clickjoin/kafka'
import type { Journal } from '../journal/journal.ts'

/**
 * Publishes ingest's two events. Each promise resolves only once the event is durable: acknowledged
 * by Kafka, or — for the browser's events (a tracking-link click, a pixel) — fsynced in the local
 * journal when Kafka does not answer in time (SPEC §2 "When Kafka is unavailable").
 */
export interface EventPublisher {
  /** `browser`: a visitor waits for this click (GET /c): Kafka or the journal. Else Kafka only. */
  click(click: ClickV1, options?: { browser?: boolean }): Promise<void>
  /** A pixel conversion (`channel: 'pixel'`) may go to the journal; a partner's postback only to Kafka. */
  postback(postback: PostbackV1): Promise<void>
}

export type JournalReason = 'backlog' | 'kafka_down' | 'timeout' | 'error'

export interface JournalFallback {
  journal: Journal
  /** A browser event waits this long for Kafka's ack before it goes to the journal instead. */
  fallbackMs: number
  /** Told where each browser event went, for metrics. */
  onJournaled?: (reason: JournalReason) => void
}

export function createEventPublisher(producer: EventProducer, topics: TopicNames, fallback?: JournalFallback): EventPublisher {
  const browserSend = fallback ? journaledSend(producer, fallback) : (topic: string, message: OutgoingMessage) => producer.send(topic, message)
  return {
    click(click, options) {
      const message = { key: click.click_id, value: encodeEvent(clickV1Contract, click) }
      return options?.browser ? browserSend(topics.clicks, message) : producer.send(topics.clicks, message)
    },
    // Keyed by conversion identity: the postbacks of one conversion are decided in this order.
    postback(postback) {
      const message = { key: conversionPartitionKey(postback), value: encodeEvent(postbackV1Contract, postback) }
      return postback.channel === 'pixel' ? browserSend(topics.conversions, message) : producer.send(topics.conversions, message)
    },
  }
}

/**
 * Kafka first while it is healthy and the journal empty; otherwise straight to the journal, so
 * that once one event went there every later one follows it (the drainer keeps their order).
 * A send still waiting in the producer's queue at the deadline is withdrawn (certainly not in
 * Kafka); one already on the wire may still land, and its journal copy then lands too — the
 * same event with the same ID, which every consumer keeps once (docs/delivery.md).
 */
function journaledSend(producer: EventProducer, { journal, fallbackMs, onJournaled }: JournalFallback) {
  const toJournal = (topic: string, message: OutgoingMessage, reason: JournalReason) => {
    onJournaled?.(reason)
    return journal.append({ topic, key: message.key, value: Buffer.isBuffer(message.value) ? message.value : Buffer.from(message.value) })
  }
  return (topic: string, message: OutgoingMessage): Promise<void> => {
    if (journal.hasUndelivered()) return toJournal(topic, message, 'backlog')
    if (!producer.health().ok) return toJournal(topic, message, 'kafka_down')
    return producer.send(topic, message, { timeoutMs: fallbackMs }).catch((err: unknown) =>
      // MessageWithdrawnError: still queued at the deadline, so certainly not written.
      toJournal(topic, message, err instanceof MessageWithdrawnError ? 'timeout' : 'error'),
    )
  }
}
