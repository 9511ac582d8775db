import { ProduceAcks, Producer } from '@platformatic/kafka'
import type { KafkaConnectionOptions } from './client.ts'
import { javaPartitioner } from './murmur2.ts'
import {
  createQueuedProducer,
  type BatchingProducerOptions,
  type EventProducer,
  type OutgoingMessage,
  type ProduceTransport,
} from './producer.ts'

type Message = Parameters<Producer['send']>[0]['messages'][number]

function toBuffer(value: Buffer | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value
}

function toRecord(topic: string, message: OutgoingMessage): Message {
  const record: Message = { topic, key: Buffer.from(message.key), value: toBuffer(message.value) }
  if (message.headers) {
    const headers = new Map<Buffer, Buffer>()
    for (const [name, value] of Object.entries(message.headers)) {
      if (value === undefined) continue
      if (Array.isArray(value)) throw new TypeError(`header ${name}: several values per header are not supported`)
      headers.set(Buffer.from(name), toBuffer(value))
    }
    record.headers = headers
  }
  return record
}

type FindBy = (property: string, value: unknown) => unknown

/** A dead or moving leader, a shrinking ISR: worth another try on fresh metadata. Not a timeout. */
function retriable(err: unknown): boolean {
  const findBy = (err as { findBy?: FindBy } | undefined)?.findBy?.bind(err)
  if (!findBy) return false
  return Boolean(findBy('code', 'PLT_KFK_NETWORK') ?? findBy('hasStaleMetadata', true) ?? findBy('canRetry', true))
}

/**
 * The @platformatic/kafka transport: the same produce call as kafkajs' (acks=all, not
 * idempotent, no topic auto-creation, the Java client's murmur2 partitioner — ours, in 32-bit
 * arithmetic (murmur2.ts), is its `compatibilityPartitioner`, `murmur2(key) & 0x7fffffff`, which
 * is kafkajs' `toPositive(murmur2(key))`; its default one, `murmur2(key) >>> 0`, would move keys with a
 * negative hash), with a fraction of kafkajs' CPU per message (docs/benchmarks.md, "Ingest at
 * saturation"). Retries and timeouts as kafkajs': `retries` attempts `retryDelay` apart, each
 * request failing after `requestTimeoutMs`, so a send to a dead or frozen broker fails in
 * bounded time and the queue's ack deadline does the rest; a batch that failed on an
 * unreachable or moved leader is retried on fresh metadata for up to one request timeout.
 */
function platformaticTransport(connection: KafkaConnectionOptions): ProduceTransport {
  const requestTimeoutMs = connection.requestTimeoutMs ?? 10_000
  const producer = new Producer({
    clientId: connection.clientId,
    bootstrapBrokers: connection.brokers,
    connectTimeout: connection.connectionTimeoutMs ?? 3_000,
    requestTimeout: requestTimeoutMs,
    // The produce request's own timeout, which the broker applies to the replicas' acks.
    timeout: requestTimeoutMs,
    retries: connection.retries ?? 3,
    retryDelay: 100,
    acks: ProduceAcks.ALL,
    idempotent: false,
    autocreateTopics: false,
    partitioner: javaPartitioner,
  })
  let brokersConnected = 0
  let produceCalls = 0
  producer.on('client:broker:connect', () => void brokersConnected++)
  producer.on('client:broker:disconnect', () => void (brokersConnected = Math.max(0, brokersConnected - 1)))
  return {
    async connect() {
      await producer.connectToBrokers(null)
    },
    async produce(messages, onRetry) {
      const records = new Array<Message>(messages.length)
      for (let i = 0; i < messages.length; i++) records[i] = toRecord(messages[i]!.topic, messages[i]!.message)
      const giveUpAt = performance.now() + requestTimeoutMs
      for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 1_000)) {
        produceCalls++
        try {
          // acks on every call: Producer.send() ignores the constructor's `acks` and sends a
          // non-idempotent producer's messages with acks=1 (leader only) unless told otherwise.
          await producer.send({ messages: records, acks: ProduceAcks.ALL, autocreateTopics: false })
          return
        } catch (err) {
          // @platformatic/kafka refreshes its metadata on a "not leader" answer, but not when a
          // leader is unreachable (a dead broker refuses the connection): it would keep sending
          // there until the metadata ages out, and one such partition fails the whole batch.
          // kafkajs refreshes and retries until a successor is elected; so do we, within one
          // request timeout (a partly written batch may be written twice: consumers keep one
          // copy per event ID). The queue's ack deadline answers the callers meanwhile.
          producer.clearMetadata()
          if (!retriable(err) || performance.now() + delayMs > giveUpAt) throw err
          onRetry?.(err)
          await new Promise((resolve) => setTimeout(resolve, delayMs))
        }
      }
    },
    disconnect: () => producer.close(),
    isConnected: () => brokersConnected > 0,
    produceRequests: () => produceCalls,
  }
}

/**
 * The batching producer of producer.ts over @platformatic/kafka instead of kafkajs: same
 * queue, linger, in-flight batches, ack deadlines and errors (KafkaUnavailableError,
 * MessageWithdrawnError), same key → partition. Used by ingest, whose click path it is.
 */
export function createFastProducer(connection: KafkaConnectionOptions, options: BatchingProducerOptions = {}): EventProducer {
  return createQueuedProducer(platformaticTransport(connection), options)
}
