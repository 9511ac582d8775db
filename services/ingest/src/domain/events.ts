import {
  conversionPartitionKey,
  encodeClick,
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

export type JournalReason = 'backlog' | 'kafka_down' | 'kafka_slow' | 'timeout' | 'error'

export interface JournalFallback {
  journal: Journal
  /** A browser event waits this long for Kafka's ack before it goes to the journal instead. */
  fallbackMs: number
  /** Told where each browser event went, for metrics. */
  onJournaled?: (reason: JournalReason) => void
  /** Milliseconds clock of the hold after a fallback (tests move it); default performance.now. */
  now?: () => number
}

export function createEventPublisher(producer: EventProducer, topics: TopicNames, fallback?: JournalFallback): EventPublisher {
  const browserSend = fallback ? journaledSend(producer, fallback) : (topic: string, message: OutgoingMessage) => producer.send(topic, message)
  return {
    click(click, options) {
      const message = { key: click.click_id, value: encodeClick(click) }
      // A click is the only event of its key (its own click ID): no order to keep behind the journal.
      return options?.browser ? browserSend(topics.clicks, message, false) : producer.send(topics.clicks, message)
    },
    // Keyed by conversion identity: the postbacks of one conversion are decided in this order.
    postback(postback) {
      const message = { key: conversionPartitionKey(postback), value: encodeEvent(postbackV1Contract, postback) }
      return postback.channel === 'pixel' ? browserSend(topics.conversions, message, true) : producer.send(topics.conversions, message)
    },
  }
}

/** After a browser event fell back to the journal, the next ones go there directly for this long. */
export const KAFKA_SLOW_HOLD_MS = 1_000

/**
 * Kafka first while it is healthy; otherwise straight to the journal. An event whose key may
 * have other events (`keepOrder`: a pixel conversion) also goes to the journal while the journal
 * holds anything, so that it follows the journaled ones (the drainer keeps their order). A click
 * is the only event of its click ID, so clicks go back to Kafka as soon as it answers, while the
 * drainer empties the journal beside them: under a steady load the journal would otherwise
 * never empty (every new click joining its tail), and every click would cost an fsync and a
 * second delivery for as long as the load lasts — what made ingest collapse at 800 connections.
 *
 * A send still waiting in the producer's queue at the deadline is withdrawn (certainly not in
 * Kafka); one already on the wire may still land, and its journal copy then lands too — the
 * same event with the same ID, which every consumer keeps once (docs/delivery.md). After such a
 * fallback the next browser events go straight to the journal for KAFKA_SLOW_HOLD_MS: a stalled
 * broker makes every visitor wait the fallback delay only once per hold, not each.
 */
function journaledSend(producer: EventProducer, { journal, fallbackMs, onJournaled, now = () => performance.now() }: JournalFallback) {
  let slowUntil = 0
  const toJournal = (topic: string, message: OutgoingMessage, reason: JournalReason) => {
    onJournaled?.(reason)
    return journal.append({ topic, key: message.key, value: Buffer.isBuffer(message.value) ? message.value : Buffer.from(message.value) })
  }
  const fellBack = (topic: string, message: OutgoingMessage, err: unknown) => {
    slowUntil = now() + KAFKA_SLOW_HOLD_MS
    // MessageWithdrawnError: still queued at the deadline, so certainly not written.
    return toJournal(topic, message, err instanceof MessageWithdrawnError ? 'timeout' : 'error')
  }
  return (topic: string, message: OutgoingMessage, keepOrder: boolean): Promise<void> => {
    if (keepOrder && journal.hasUndelivered()) return toJournal(topic, message, 'backlog')
    if (!producer.health().ok) return toJournal(topic, message, 'kafka_down')
    if (slowUntil !== 0 && now() < slowUntil) return toJournal(topic, message, 'kafka_slow')
    return producer.send(topic, message, { timeoutMs: fallbackMs }).catch((err: unknown) => fellBack(topic, message, err))
  }
}
