import { Redis } from 'ioredis'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { createConfigStore, createPublisherStore, type ConfigStore } from '@clickjoin/campaigns'
import { createClickIdKeyring } from '@clickjoin/click-id'
import { topicNames, type TopicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensurePipelineTopics, type EventProducer } from '@clickjoin/kafka'
import { componentLifecycle, createMetricsRegistry, type Component, type RunnableService } from '@clickjoin/service-runtime'
import { buildIngestServer } from './app.ts'
import type { IngestConfig } from './config.ts'
import { createClickIdempotency } from './domain/click-idempotency.ts'
import { createDuplicateClickDetector } from './domain/duplicate-clicks.ts'
import { createEventPublisher } from './domain/events.ts'
import { createSignatureReplayGuard } from './domain/signature-replay.ts'
import { createIngestMetrics, observeKafkaBatch } from './plugins/metrics.ts'

export interface IngestService extends RunnableService {
  app: FastifyInstance
  topics: TopicNames
  producer: EventProducer
  configStore: ConfigStore
  /** In starting order; stopped in reverse. */
  components: readonly Component[]
  /** The bound HTTP address after start (PORT 0 picks a free port). */
  url(): string
}

export interface IngestDepsOverrides {
  logger?: FastifyServerOptions['logger']
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
  const kafka = createKafka({
    brokers: config.kafkaBrokers,
    clientId: 'clickjoin-ingest',
    // A request must be answered within the ack timeout: fail fast rather than retry long.
    requestTimeoutMs: Math.max(1_000, Math.min(10_000, config.kafkaAckTimeoutMs)),
    retries: 2,
    log: ({ message, ...rest }) => logTo.app?.log.debug(rest, message),
  })
  const producer = createBatchingProducer(kafka, {
    lingerMs: config.kafkaLingerMs,
    ackTimeoutMs: config.kafkaAckTimeoutMs,
    maxQueuedMessages: config.kafkaMaxQueued,
    maxInFlightBatches: config.kafkaMaxInFlight,
    onBatch: observeKafkaBatch(metrics),
  })
  const redisOptions = { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 5_000 }
  // Auto-pipelining: concurrent duplicate-flag SETs share round trips.
  const redis = new Redis(config.redisUrl, { ...redisOptions, enableAutoPipelining: true, commandTimeout: 1_000 })
  const subscriber = new Redis(config.redisUrl, redisOptions)
  const configStore = createConfigStore({ redis, subscriber, keyPrefix: config.redisKeyPrefix })
  const redisClient = redisComponent('redis', redis)
  const redisSubscriber = redisComponent('redis-subscriber', subscriber)
  const readinessOf = [producer, configStore, redisClient, redisSubscriber]

  const server = await buildIngestServer(
    {
      configStore,
      publishers: createPublisherStore({ redis, keyPrefix: config.redisKeyPrefix }),
      events: createEventPublisher(producer, topics),
      duplicates: createDuplicateClickDetector(redis, config.redisKeyPrefix, () => metrics.redisErrors.inc()),
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
    { logger: deps.logger, bodyLimitBytes: config.bodyLimitBytes, trustProxy: config.trustProxy },
  )
  logTo.app = server

  const components: Component[] = [
    {
      id: 'kafka-topics',
      start: async () => void (await ensurePipelineTopics(kafka, pipelineTopicSettings(config))),
      health: () => ({ ok: true, detail: 'ensured at start' }),
    },
    producer,
    redisClient,
    redisSubscriber,
    configStore,
    {
      id: 'http',
      start: async () => {
        for (const warning of config.warnings) server.log.warn(warning)
        await server.listen({ port: config.port, host: config.host })
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
    configStore,
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

function pipelineTopicSettings(config: IngestConfig) {
  return { topicPrefix: config.topicPrefix, partitions: config.topicPartitions, replicationFactor: config.replicationFactor }
}
