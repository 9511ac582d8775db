import { Partitioners, type IHeaders, type Kafka, type Producer, type TopicMessages } from 'kafkajs'

export interface OutgoingMessage {
  key: string
  value: Buffer | string
  headers?: IHeaders
}

export interface BatchingProducerOptions {
  /** How long to collect messages before one sendBatch; a full batch goes at once. */
  lingerMs?: number
  maxBatchMessages?: number
  maxBatchBytes?: number
  /** Batches awaiting the broker's ack at once. Order across batches is not kept on retries. */
  maxInFlightBatches?: number
  /** Messages waiting for the broker beyond this are refused at once (backpressure). */
  maxQueuedMessages?: number
  /** A caller whose message is not acknowledged by then gets KafkaUnavailableError. */
  ackTimeoutMs?: number
  /**
   * When the broker cannot be reached at start, start() resolves anyway and keeps connecting
   * in the background (backoff up to 5 s); sends fail until then. For a caller that has
   * somewhere else to put events meanwhile (ingest's journal). Default: start() throws.
   */
  connectInBackground?: boolean
  /** Told about a failed (background) connection attempt. */
  onConnectError?: (err: unknown) => void
  /** Called after every sendBatch, for metrics. */
  onBatch?: (stats: { messages: number; bytes: number; durationMs: number; ok: boolean }) => void
}

export interface EventProducer {
  readonly id: string
  start(): Promise<void>
  /**
   * Resolves only once the broker acknowledged the message (acks from all in-sync replicas).
   * Rejects when no ack came within the ack timeout (or `options.timeoutMs`, if shorter): with
   * MessageWithdrawnError when the message was still queued (it was never written), else with
   * KafkaUnavailableError (its batch is on the wire and may still be written).
   */
  send(topic: string, message: OutgoingMessage, options?: { timeoutMs?: number }): Promise<void>
  /**
   * Writes these messages with one produce call, bypassing the queue, in their order (per
   * partition), and resolves once the broker acknowledged all of them. For a caller that
   * delivers a log in order (the ingest journal) and retries the same call until it succeeds.
   */
  sendInOrder(messages: ReadonlyArray<{ topic: string; message: OutgoingMessage }>): Promise<void>
  /** Sends everything queued and waits for it. */
  flush(): Promise<void>
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
  /** Counters since start: what callers sent, and what reached the broker as requests. */
  stats(): ProducerStats
}

export interface ProducerStats {
  messagesAcked: number
  messagesFailed: number
  batches: number
  /** Produce requests sent to brokers. */
  produceRequests: number
}

/** The broker did not acknowledge in time, is unreachable, or the queue is full. Retry later. */
export class KafkaUnavailableError extends Error {
  override readonly name: string = 'KafkaUnavailableError'
}

/** The caller withdrew a message before it was sent: it is certainly not in Kafka. */
export class MessageWithdrawnError extends KafkaUnavailableError {
  override readonly name = 'MessageWithdrawnError'
}

interface Pending {
  topic: string
  message: OutgoingMessage
  bytes: number
  settled: boolean
  /** Handed to kafkajs: from here on it may be written whatever the caller does. */
  sent: boolean
  /** performance.now() by which it must be acknowledged. */
  deadline: number
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * What the queue below needs from a Kafka client: one produce call for a list of messages with
 * acks=all (-1), resolved once the brokers acknowledged all of them, rejected otherwise; in the
 * given order within each partition; keys partitioned with the Java client's murmur2
 * (`toPositive(murmur2(key)) % partitions`), so a key lands where any client puts it.
 */
export interface ProduceTransport {
  connect(): Promise<void>
  /** `onRetry`: told of a failed attempt the transport retries by itself (health turns red meanwhile). */
  produce(messages: ReadonlyArray<{ topic: string; message: OutgoingMessage }>, onRetry?: (err: unknown) => void): Promise<void>
  disconnect(): Promise<void>
  isConnected(): boolean
  /** Produce requests sent to brokers so far. */
  produceRequests(): number
}

/** The kafkajs transport, for the services that keep kafkajs (the attributor, sink, dispatcher, CLI). */
function kafkajsTransport(kafka: Kafka): ProduceTransport {
  // The Java client's murmur2 partitioner, named explicitly: keys land where any client puts them.
  // Not idempotent: kafkajs' idempotent producer retries forever and cannot report an outage.
  const producer: Producer = kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  let connected = false
  let produceRequests = 0
  producer.on(producer.events.REQUEST, (e) => {
    if (e.payload.apiName === 'Produce') produceRequests++
  })
  producer.on(producer.events.CONNECT, () => {
    connected = true
  })
  producer.on(producer.events.DISCONNECT, () => {
    connected = false
  })
  return {
    connect: () => producer.connect(),
    async produce(messages) {
      const byTopic = new Map<string, TopicMessages>()
      for (const { topic, message } of messages) {
        let entry = byTopic.get(topic)
        if (!entry) byTopic.set(topic, (entry = { topic, messages: [] }))
        entry.messages.push(message)
      }
      await producer.sendBatch({ topicMessages: [...byTopic.values()], acks: -1 })
    },
    disconnect: () => producer.disconnect(),
    isConnected: () => connected,
    produceRequests: () => produceRequests,
  }
}

/**
 * kafkajs has no linger/batch.size of its own, so this collects concurrent sends for a few
 * milliseconds and writes them with one sendBatch. Up to `maxInFlightBatches` batches are in
 * flight; what arrives meanwhile forms the next batch, which goes as soon as a slot frees
 * (it has already waited), so the batch size grows with broker latency.
 *
 * Not idempotent: kafkajs' idempotent producer retries forever and cannot report an outage
 * to the caller. A retried batch may therefore be written twice; every consumer deduplicates
 * on event IDs (see docs/delivery.md). What is never possible is a resolved send whose
 * message the broker did not acknowledge.
 */
export function createBatchingProducer(kafka: Kafka, options: BatchingProducerOptions = {}): EventProducer {
  return createQueuedProducer(kafkajsTransport(kafka), options)
}

/** The batching queue over any transport (kafkajs above, @platformatic/kafka in fast-producer.ts). */
export function createQueuedProducer(transport: ProduceTransport, options: BatchingProducerOptions = {}): EventProducer {
  const lingerMs = options.lingerMs ?? 2
  const maxBatchMessages = options.maxBatchMessages ?? 5_000
  // Below the broker's default message.max.bytes (1 MB), which bounds what one partition's
  // share of a request may hold: kafkajs does not split a batch the broker refuses.
  const maxBatchBytes = options.maxBatchBytes ?? 768 * 1024
  const maxQueued = options.maxQueuedMessages ?? 100_000
  const ackTimeoutMs = options.ackTimeoutMs ?? 15_000
  const maxInFlight = options.maxInFlightBatches ?? 1

  let queue: Pending[] = []
  let queuedBytes = 0
  const inFlight = new Set<Promise<void>>()
  let lingerTimer: NodeJS.Timeout | undefined
  let stopping = false
  let lastError: { message: string; at: number } | undefined

  const counters = { messagesAcked: 0, messagesFailed: 0, batches: 0 }

  // A failed produce, or a retried attempt, counts as a failure for health() until an attempt
  // succeeds: while a leader is being replaced (or the only broker is gone), the journal takes
  // browser events.
  function noteFailure(err: unknown): string {
    const message = err instanceof Error ? err.message : String(err)
    lastError = { message, at: Date.now() }
    return message
  }

  function settle(p: Pending, err?: Error): void {
    if (p.settled) return
    p.settled = true
    if (err) p.reject(err)
    else p.resolve()
  }

  function startBatch(): void {
    if (lingerTimer) clearTimeout(lingerTimer)
    lingerTimer = undefined
    const sending: Promise<void> = sendNextBatch().finally(() => {
      inFlight.delete(sending)
      // Whatever queued meanwhile has waited at least as long as a linger: send it now.
      if (queue.length > 0 && inFlight.size < maxInFlight) startBatch()
    })
    inFlight.add(sending)
  }

  function schedule(): void {
    if (queue.length === 0 || inFlight.size >= maxInFlight) return
    if (queue.length >= maxBatchMessages || queuedBytes >= maxBatchBytes || stopping) {
      startBatch()
      return
    }
    lingerTimer ??= setTimeout(() => {
      lingerTimer = undefined
      if (queue.length > 0 && inFlight.size < maxInFlight) startBatch()
    }, lingerMs)
  }

  /**
   * The next batch, in queue order, skipping what timed out before it was sent. When the whole
   * queue fits (the common case: a batch goes as soon as a slot frees), the queue array itself
   * becomes the batch: no copy, no pass over what stays. Returns it with its byte count.
   */
  function takeBatch(): { batch: Pending[]; bytes: number } {
    const taken = queue
    let bytes = 0
    let i = 0
    let skipped = 0
    for (; i < taken.length; i++) {
      const p = taken[i]!
      if (p.settled) {
        skipped++ // timed out before it was sent: never write it
        continue
      }
      if (i - skipped >= maxBatchMessages || (i > skipped && bytes + p.bytes > maxBatchBytes)) break
      p.sent = true
      bytes += p.bytes
    }
    let batch: Pending[]
    if (i === taken.length) {
      queue = []
      queuedBytes = 0
      batch = taken
    } else {
      queue = taken.slice(i)
      queuedBytes -= bytes
      for (let j = 0; j < i; j++) if (taken[j]!.settled) queuedBytes -= taken[j]!.bytes
      batch = taken.slice(0, i)
    }
    return { batch: skipped === 0 ? batch : batch.filter((p) => p.sent), bytes }
  }

  // One timer for every outstanding message (not one per message: a timer per click was a
  // measurable share of ingest's CPU): every DEADLINE_TICK_MS, settle what is past its deadline.
  const DEADLINE_TICK_MS = 25
  const sentBatches = new Set<Pending[]>()
  let deadlineTimer: NodeJS.Timeout | undefined
  function watchDeadlines(): void {
    deadlineTimer ??= setInterval(expireDeadlines, DEADLINE_TICK_MS)
  }
  function expireDeadlines(): void {
    const t = performance.now()
    for (const p of queue) {
      if (!p.settled && p.deadline <= t) settle(p, new MessageWithdrawnError('no acknowledgement from Kafka in time; withdrawn before it was sent'))
    }
    for (const batch of sentBatches) {
      for (const p of batch) {
        if (!p.settled && p.deadline <= t) settle(p, new KafkaUnavailableError('no acknowledgement from Kafka in time'))
      }
    }
    if (queue.length === 0 && sentBatches.size === 0 && deadlineTimer) {
      clearInterval(deadlineTimer)
      deadlineTimer = undefined
    }
  }

  async function sendNextBatch(): Promise<void> {
    const { batch, bytes } = takeBatch()
    if (batch.length === 0) return
    sentBatches.add(batch)
    const started = options.onBatch ? performance.now() : 0
    let error: Error | undefined
    try {
      await transport.produce(batch, noteFailure)
      lastError = undefined
    } catch (err) {
      error = new KafkaUnavailableError(`Kafka did not acknowledge the batch: ${noteFailure(err)}`, {
        cause: err,
      })
    }
    counters.batches++
    if (error) counters.messagesFailed += batch.length
    else counters.messagesAcked += batch.length
    options.onBatch?.({
      messages: batch.length,
      bytes,
      durationMs: performance.now() - started,
      ok: !error,
    })
    sentBatches.delete(batch)
    for (const p of batch) settle(p, error)
  }

  let reconnectTimer: NodeJS.Timeout | undefined
  let connecting: Promise<void> | undefined
  function connectLater(delayMs: number): void {
    if (stopping) return
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined
      connecting = transport.connect().then(
        () => {
          connecting = undefined
        },
        (err: unknown) => {
          connecting = undefined
          options.onConnectError?.(err)
          connectLater(Math.min(delayMs * 2, 5_000))
        },
      )
    }, delayMs)
  }

  async function flush(): Promise<void> {
    while (inFlight.size > 0 || queue.some((p) => !p.settled)) {
      if (queue.length > 0 && inFlight.size < maxInFlight) startBatch()
      await Promise.race(inFlight)
    }
  }

  return {
    id: 'kafka-producer',
    async start() {
      try {
        await transport.connect()
      } catch (err) {
        if (!options.connectInBackground) throw err
        options.onConnectError?.(err)
        lastError = { message: `cannot connect: ${err instanceof Error ? err.message : String(err)}`, at: Date.now() }
        void connectLater(250)
      }
    },
    send(topic, message, sendOptions) {
      if (stopping) return Promise.reject(new KafkaUnavailableError('producer is stopping'))
      if (queue.length >= maxQueued) {
        return Promise.reject(new KafkaUnavailableError(`producer queue full (${maxQueued} messages)`))
      }
      return new Promise<void>((resolve, reject) => {
        const bytes = message.key.length + message.value.length
        const timeoutMs = Math.min(ackTimeoutMs, sendOptions?.timeoutMs ?? ackTimeoutMs)
        const p: Pending = { topic, message, bytes, settled: false, sent: false, deadline: performance.now() + timeoutMs, resolve, reject }
        queue.push(p)
        watchDeadlines()
        queuedBytes += bytes
        schedule()
      })
    },
    async sendInOrder(messages) {
      try {
        await transport.produce(messages, noteFailure)
        lastError = undefined
        counters.messagesAcked += messages.length
      } catch (err) {
        const message = noteFailure(err)
        counters.messagesFailed += messages.length
        throw new KafkaUnavailableError(`Kafka did not acknowledge: ${message}`, { cause: err })
      }
    },
    flush,
    async stop() {
      stopping = true
      if (reconnectTimer) clearTimeout(reconnectTimer)
      await connecting?.catch(() => undefined)
      await flush()
      if (deadlineTimer) clearInterval(deadlineTimer)
      deadlineTimer = undefined
      await transport.disconnect()
    },
    stats: () => ({ ...counters, produceRequests: transport.produceRequests() }),
    health() {
      if (!transport.isConnected()) return { ok: false, detail: 'producer not connected' }
      // A failure counts until a later batch succeeds, or for 30 s when nothing is sent: an
      // idle producer must not stay "not ready" forever after one bad moment.
      if (lastError && Date.now() - lastError.at < 30_000) {
        return { ok: false, detail: `last batch failed: ${lastError.message}` }
      }
      return { ok: true, detail: 'connected' }
    },
  }
}
