import { Redis } from 'ioredis'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { createConfigStore, createPublisherStore, type ConfigStore } from '@clickjoin/campaigns'
import { createClickIdKeyring } from '@clickjoin/click-id'
import { topicNames, type TopicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics, type EventProducer } from '@clickjoin/kafka'
import { createMetricsRegistry, type Component, type ShutdownStep } from '@clickjoin/service-runtime'
import { buildIngestServer } from './app.ts'
import type { IngestConfig } from './config.ts'
import { createDuplicateClickDetector } from './domain/duplicate-clicks.ts'
import { createEventPublisher } from './domain/events.ts'
import { createIngestMetrics, observeKafkaBatch } from './plugins/metrics.ts'

export interface IngestService {
  app: FastifyInstance
  topics: TopicNames
  producer: EventProducer
  configStore: ConfigStore
  /** The shutdown order: stop taking requests, flush the producer, stop the config store, quit Redis. */
  shutdownSteps(): ShutdownStep[]
  /** Runs the shutdown steps (tests). */
  stop(): Promise<void>
}

/** A ready Redis component: ioredis reports its connection state without a round trip. */
function redisComponent(id: string, redis: Redis): Component {
  return { id, health: () => ({ ok: redis.status === 'ready', detail: redis.status }) }
}

/**
 * Builds every dependency of the ingest edge from its configuration and returns the fastify
 * app ready to listen. server.ts is the process entry; tests and the benchmark call this with
 * their own configuration (unique topic prefix, key prefix, port 0).
 */
export async function createIngestService(
  config: IngestConfig,
  options: { logger?: FastifyServerOptions['logger'] } = {},
): Promise<IngestService> {
  const topics = topicNames(config.topicPrefix)
  const registry = createMetricsRegistry('ingest')
  const metrics = createIngestMetrics(registry)
  const kafka = createKafka({
    brokers: config.kafkaBrokers,
    clientId: 'clickjoin-ingest',
    // A request must be answered within the ack timeout: fail fast rather than retry long.
    requestTimeoutMs: Math.max(1_000, Math.min(10_000, config.kafkaAckTimeoutMs)),
    retries: 2,
  })
  await ensureTopics(kafka, [
    { topic: topics.clicks, numPartitions: config.topicPartitions },
    { topic: topics.conversions, numPartitions: config.topicPartitions },
  ])
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

  const started: Array<() => Promise<unknown>> = []
  try {
    await producer.start()
    started.push(() => producer.stop())
    await Promise.all([redis.connect(), subscriber.connect()])
    started.push(() => Promise.all([redis.quit(), subscriber.quit()]))
    await configStore.start()
    started.push(() => configStore.stop())
  } catch (err) {
    for (const stop of started.reverse()) await stop().catch(() => undefined)
    redis.disconnect()
    subscriber.disconnect()
    throw err
  }

  const app = await buildIngestServer(
    {
      configStore,
      publishers: createPublisherStore({ redis, keyPrefix: config.redisKeyPrefix }),
      events: createEventPublisher(producer, topics),
      duplicates: createDuplicateClickDetector(redis, config.redisKeyPrefix, () => metrics.redisErrors.inc()),
      keyring: createClickIdKeyring({ keys: config.clickIdKeys, currentKeyId: config.clickIdKeyId }),
      metrics,
      registry,
      components: () => [producer, configStore, redisComponent('redis', redis), redisComponent('redis-subscriber', subscriber)],
      settings: {
        adminToken: config.adminToken,
        publicUrl: config.publicUrl,
        retryAfterSeconds: config.retryAfterSeconds,
        maxEventLoopDelayMs: config.maxEventLoopDelayMs,
        unknownCampaignUrl: config.unknownCampaignUrl,
      },
    },
    { logger: options.logger, bodyLimitBytes: config.bodyLimitBytes, trustProxy: config.trustProxy },
  )
  for (const warning of config.warnings) app.log.warn(warning)

  const shutdownSteps = (): ShutdownStep[] => [
    // In-flight requests finish (they wait for their Kafka acknowledgement) before the close resolves.
    { name: 'stop accepting HTTP requests', run: () => app.close() },
    { name: 'flush and stop the Kafka producer', run: () => producer.stop() },
    { name: 'stop the config store', run: () => configStore.stop() },
    { name: 'quit Redis', run: async () => void (await Promise.all([redis.quit(), subscriber.quit()])) },
  ]
  let stopping: Promise<void> | undefined
  return {
    app,
    topics,
    producer,
    configStore,
    shutdownSteps,
    stop: () =>
      (stopping ??= (async () => {
        for (const step of shutdownSteps()) await step.run()
      })()),
  }
}
