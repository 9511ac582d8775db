import { Redis } from 'ioredis'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { createConfigStore, createPublisherStore, type ConfigStore } from '@clickjoin/campaigns'
import { createClickIdKeyring } from '@clickjoin/click-id'
import { topicNames, type TopicNames } from '@clickjoin/contracts'
import { createFastProducer, createKafka, ensurePipelineTopics, type EventProducer, type Kafka } from '@clickjoin/kafka'
import { componentLifecycle, createMetricsRegistry, type Component, type RunnableService } from '@clickjoin/service-runtime'
import { buildIngestServer } from './app.ts'
import type { IngestConfig } from './config.ts'
import { createClickIdempotency } from './domain/click-idempotency.ts'
import { createSharedClickWindow, type DuplicateClickDetector } from './domain/duplicate-clicks.ts'
import { createEventPublisher } from './domain/events.ts'
import { createSignatureReplayGuard } from './domain/signature-replay.ts'
import { createJournalDrainer } from './journal/drainer.ts'
import { createJournal, type Journal } from './journal/journal.ts'
import { createIngestMetrics, observeKafkaBatch, registerJournalGauges } from './plugins/metrics.ts'

export interface IngestService extends RunnableService {
  app: FastifyInstance
  topics: TopicNames
  producer: EventProducer
  /** Browser events waiting for Kafka (SPEC §2 "When Kafka is unavailable"). */
  journal: Journal
  configStore: ConfigStore
  /** The shared duplicate-click window. */
  duplicates: DuplicateClickDetector
  /** In starting order; stopped in reverse. */
  components: readonly Component[]
  /** The bound HTTP address after start (PORT 0 picks a free port). */
  url(): string
}

export interface IngestDepsOverrides {
  logger?: FastifyServerOptions['logger']
  /** The duplicate-click window's clock (tests move it instead of waiting a minute). */
  clock?: () => number
}

/** A ready Redis component: ioredis reports its connection state without a round trip. */
function redisComponent(id: string, redis: Redis): Component {
  return {
    id,
    start: async () => void (await redis.connect()),
    stop: async () => void (await redis.quit().catch(() => redis.disconnect())),
    health: () => ({ ok: redis.status === 'ready', detail: redis.status }),
  }
}

/**
 * Composes the ingest edge from its configuration: the components in starting order (topics,
 * producer, Redis, config store, HTTP listener last). server.ts runs it through runService;
 * tests and the benchmark create it with their own configuration (unique prefixes, port 0)
 * and call start() and stop() themselves.
 */
export async function createIngestService(config: IngestConfig, deps: IngestDepsOverrides = {}): Promise<IngestService> {
  const registry = createMetricsRegistry('ingest')
  const metrics = createIngestMetrics(registry)
  const topics = topicNames(config.topicPrefix)
  // kafkajs' lines go to the app's log, which exists once the app is built below.
  const logTo: { app?: FastifyInstance } = {}
  const connection = {
    brokers: config.kafkaBrokers,
    clientId: 'clickjoin-ingest',
    // A request must be answered within the ack timeout: fail fast rather than retry long.
    requestTimeoutMs: Math.max(1_000, Math.min(10_000, config.kafkaAckTimeoutMs)),
    retries: 2,
    log: ({ message, ...rest }: { message: string; [k: string]: unknown }) => logTo.app?.log.debug(rest, message),
  }
  // kafkajs for the admin calls (topics); the click path's producer is @platformatic/kafka.
  const kafka = createKafka(connection)
  const producer = createFastProducer(connection, {
    lingerMs: config.kafkaLingerMs,
    ackTimeoutMs: config.kafkaAckTimeoutMs,
    maxQueuedMessages: config.kafkaMaxQueued,
    maxInFlightBatches: config.kafkaMaxInFlight,
    onBatch: observeKafkaBatch(metrics),
    // Ingest starts without Kafka: browser events go to the journal meanwhile.
    connectInBackground: true,
    onConnectError: (err) => logTo.app?.log.warn({ err }, 'Kafka unreachable: journaling browser events, S2S routes answer 503'),
  })
  const journalLog = {
    warn: (obj: object, msg: string) => logTo.app?.log.warn(obj, msg),
    error: (obj: object, msg: string) => logTo.app?.log.error(obj, msg),
    info: (obj: object, msg: string) => logTo.app?.log.info(obj, msg),
  }
  const journal = createJournal({
    dir: config.journalDir,
    maxBytes: config.journalMaxBytes,
    segmentBytes: config.journalSegmentBytes,
    log: journalLog,
  })
  registerJournalGauges(registry, () => journal.stats())
  const drainer = createJournalDrainer({ journal, producer, log: journalLog, onDelivered: (n) => metrics.journalDelivered.inc(n) })
  const topicsComponent = ensureTopicsInBackground(kafka, config, journalLog)
  const redisOptions = { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 5_000 }
  // Auto-pipelining: concurrent duplicate-flag SETs share round trips.
  const redis = new Redis(config.redisUrl, { ...redisOptions, enableAutoPipelining: true, commandTimeout: 1_000 })
  const subscriber = new Redis(config.redisUrl, redisOptions)
  const configStore = createConfigStore({ redis, subscriber, keyPrefix: config.redisKeyPrefix })
  const clickWindow = createSharedClickWindow({
    redis,
    subscriber: new Redis(config.redisUrl, redisOptions),
    channel: `${config.redisKeyPrefix}click-window`,
    ...(deps.clock ? { now: deps.clock } : {}),
    onRedisError: () => metrics.redisErrors.inc(),
  })
  const redisClient = redisComponent('redis', redis)
  const redisSubscriber = redisComponent('redis-subscriber', subscriber)
  const readinessOf: Component[] = [
    topicsComponent,
    kafkaWhileJournaling(producer),
    journalComponent(journal, config.journalMaxBytes),
    drainer,
    configStore,
    redisClient,
    redisSubscriber,
    clickWindow,
  ]

  const server = await buildIngestServer(
    {
      configStore,
      publishers: createPublisherStore({ redis, keyPrefix: config.redisKeyPrefix }),
      events: createEventPublisher(producer, topics, {
        journal,
        fallbackMs: config.journalFallbackMs,
        onJournaled: (reason) => metrics.journaled.inc({ reason }),
      }),
      duplicates: clickWindow,
      signatureReplays: createSignatureReplayGuard(redis, config.redisKeyPrefix),
      clickIdempotency: createClickIdempotency(redis, config.redisKeyPrefix),
      keyring: createClickIdKeyring({ keys: config.clickIdKeys, currentKeyId: config.clickIdKeyId }),
      metrics,
      registry,
      components: () => readinessOf,
      settings: {
        adminToken: config.adminToken,
        publicUrl: config.publicUrl,
        retryAfterSeconds: config.retryAfterSeconds,
        maxEventLoopDelayMs: config.maxEventLoopDelayMs,
        unknownCampaignUrl: config.unknownCampaignUrl,
      },
    },
    { logger: deps.logger, bodyLimitBytes: config.bodyLimitBytes, trustProxy: config.trustProxy, fastClickPath: config.fastClickPath },
  )
  logTo.app = server

  const components: Component[] = [
    // Opened first and closed last: the HTTP listener appends to it until it has stopped.
    { id: 'journal', start: () => journal.open(), stop: () => journal.close(), health: () => ({ ok: true, detail: 'open' }) },
    topicsComponent,
    producer,
    drainer,
    redisClient,
    redisSubscriber,
    configStore,
    clickWindow,
    {
      id: 'http',
      start: async () => {
        for (const warning of config.warnings) server.log.warn(warning)
        await server.listen({ port: config.port, host: config.host, backlog: config.listenBacklog })
      },
      // In-flight requests finish (they wait for their Kafka acknowledgement) before the close resolves.
      stop: () => server.close(),
      health: () => ({ ok: true, detail: 'listening' }),
    },
  ]
  const lifecycle = componentLifecycle(components, server.log)
  return {
    app: server,
    log: server.log,
    topics,
    producer,
    journal,
    configStore,
    duplicates: clickWindow,
    components,
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
    url() {
      const address = server.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : config.port
      return `http://127.0.0.1:${port}`
    },
  }
}

/** The producer's readiness, told as "degraded" while browser events can go to the journal. */
function kafkaWhileJournaling(producer: EventProducer): Component {
  return {
    id: producer.id,
    health() {
      const h = producer.health()
      if (h.ok) return h
      return { ok: true, degraded: true, detail: `${h.detail}: clicks and pixels go to the journal, S2S routes answer 503` }
    },
  }
}

function journalComponent(journal: Journal, maxBytes: number): Component {
  return {
    id: 'journal',
    health() {
      const { events, bytes, oldestAppendedAtMs } = journal.stats()
      if (events === 0) return { ok: true, detail: 'empty' }
      const age = oldestAppendedAtMs === undefined ? 0 : Math.round((Date.now() - oldestAppendedAtMs) / 1000)
      const detail = `${events} events (${bytes} of ${maxBytes} bytes) wait for Kafka, the oldest for ${age} s`
      // Less room than a few clicks: the browser routes refuse with 503 now.
      if (bytes > maxBytes - Math.min(64 * 1024, maxBytes / 10)) return { ok: false, detail: `full: ${detail}` }
      return { ok: true, degraded: true, detail }
    },
  }
}

/**
 * Creates the topics at start; if Kafka cannot be reached, the start goes on (the journal takes
 * the browser's events) and the topics are ensured in the background until it succeeds.
 */
function ensureTopicsInBackground(kafka: Kafka, config: IngestConfig, log: { warn(obj: object, msg: string): void }): Component {
  let ensured = false
  let lastError = ''
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let attempt: Promise<void> | undefined
  const tryEnsure = async () => {
    try {
      await ensurePipelineTopics(kafka, pipelineTopicSettings(config))
      ensured = true
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err)
      // A wrong partition count is a configuration error, not an outage: refuse to start.
      if (/partitions, expected/.test(lastError)) throw err
      log.warn({ err }, 'Kafka topics not ensured yet; retrying in the background')
    }
  }
  const retry = (delayMs: number) => {
    if (ensured || stopped) return
    timer = setTimeout(() => {
      attempt = tryEnsure()
        .catch(() => undefined)
        .then(() => retry(Math.min(delayMs * 2, 10_000)))
    }, delayMs)
  }
  return {
    id: 'kafka-topics',
    async start() {
      await tryEnsure()
      retry(1_000)
    },
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      await attempt
    },
    health: () => (ensured ? { ok: true, detail: 'ensured' } : { ok: true, degraded: true, detail: `not ensured yet: ${lastError}` }),
  }
}

function pipelineTopicSettings(config: IngestConfig) {
  return { topicPrefix: config.topicPrefix, partitions: config.topicPartitions, replicationFactor: config.replicationFactor }
}
