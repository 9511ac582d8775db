import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { Redis } from 'ioredis'
import { createPublisherStore } from '@clickjoin/campaigns'
import { topicNames, type TopicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics } from '@clickjoin/kafka'
import { createMetricsRegistry, type Component, type ShutdownStep } from '@clickjoin/service-runtime'
import { buildDispatcherApp } from './app.ts'
import type { DispatcherConfig } from './config.ts'
import { createDeliveryQueue, type DeliveryQueue } from './delivery-queue.ts'
import { createDeliveryWorker } from './delivery-worker.ts'
import { createHostGate } from './domain/host-gate.ts'
import { createPostbackClient, type guardedLookup } from './http-client.ts'
import { createDispatcherMetrics } from './metrics.ts'
import { createOutcomeConsumer } from './outcome-consumer.ts'

export interface DispatcherService {
  app: FastifyInstance
  topics: TopicNames
  queue: DeliveryQueue
  /** Connects Kafka and Redis and starts consuming and delivering. */
  start(): Promise<void>
  /** In order: stop consuming, finish and record the calls in flight, flush the producer, close. */
  shutdownSteps(): ShutdownStep[]
  stop(): Promise<void>
  health(): Promise<{ ok: boolean; detail: string }>
}

export interface DispatcherDeps {
  logger?: FastifyServerOptions['logger']
  /** Name resolution for destinations (tests); the system resolver by default. */
  resolve?: Parameters<typeof guardedLookup>[1]
}

function redisComponent(id: string, redis: Redis): Component {
  return { id, health: () => ({ ok: redis.status === 'ready', detail: redis.status }) }
}

/**
 * The dispatcher (SPEC §5b) from its configuration: outcomes consumer → pending deliveries
 * in Redis → delivery worker → publishers, every attempt to the deliveries topic. server.ts
 * is the process entry; tests and the benchmark build it with their own configuration.
 */
export async function createDispatcherService(config: DispatcherConfig, deps: DispatcherDeps = {}): Promise<DispatcherService> {
  const topics = topicNames(config.topicPrefix)
  const registry = createMetricsRegistry('dispatcher')
  const metrics = createDispatcherMetrics(registry)
  // kafkajs logs through the app's logger once it exists (the closure runs only after connecting).
  const kafka = createKafka({
    brokers: config.kafkaBrokers,
    clientId: 'clickjoin-dispatcher',
    log: ({ level, message, ...rest }) => (level === 'error' ? app.log.error(rest, message) : app.log.warn(rest, message)),
  })
  const producer = createBatchingProducer(kafka, { lingerMs: 2, ackTimeoutMs: 15_000 })
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2, connectTimeout: 5_000, enableAutoPipelining: true })
  const queue = createDeliveryQueue(redis, {
    keyPrefix: config.redisKeyPrefix,
    keepFinishedMs: config.keepFinishedMs,
    keepDeliveredMs: config.keepDeliveredMs,
  })
  const publishers = createPublisherStore({ redis, keyPrefix: config.redisKeyPrefix })
  const client = createPostbackClient({
    allowedNetworks: config.allowedNetworks,
    timeoutMs: config.timeoutMs,
    connectionsPerOrigin: config.hostConcurrency,
    ...(deps.resolve ? { resolve: deps.resolve } : {}),
  })
  const gate = createHostGate({
    perHostLimit: config.hostConcurrency,
    failureThreshold: config.breakerFailures,
    cooldownMs: config.breakerCooldownMs,
  })

  // The closures run only once everything below exists (the app does not listen before this returns).
  const components = (): Component[] => [consumer, worker, producer, redisComponent('redis', redis)]
  const app = await buildDispatcherApp(
    { queue, registry, components, adminToken: config.adminToken, onRedeliver: () => worker.wake() },
    { logger: deps.logger },
  )
  const log = app.log
  const worker = createDeliveryWorker(
    { queue, client, gate, publishers, producer, deliveriesTopic: topics.deliveries, metrics, log },
    {
      concurrency: config.concurrency,
      hostQueue: config.hostConcurrency * 2,
      pollIntervalMs: config.pollIntervalMs,
      leaseMs: config.leaseMs,
      backoff: config.backoff,
    },
  )
  const consumer = createOutcomeConsumer(
    { kafka, producer, queue, publishers, metrics, log, onEnqueued: () => worker.wake() },
    { topics, groupId: config.groupId, sessionTimeoutMs: config.sessionTimeoutMs },
  )
  for (const warning of config.warnings) app.log.warn(warning)

  const shutdownSteps = (): ShutdownStep[] => [
    { name: 'stop consuming outcomes', run: () => consumer.stop() },
    { name: 'stop claiming and record the calls in flight', run: () => worker.stop() },
    { name: 'flush and stop the Kafka producer', run: () => producer.stop() },
    { name: 'close the HTTP client', run: () => client.close() },
    { name: 'close the health server', run: () => app.close() },
    { name: 'quit Redis', run: async () => void (await redis.quit()) },
  ]
  let stopping: Promise<void> | undefined
  return {
    app,
    topics,
    queue,
    async start() {
      await redis.connect()
      await ensureTopics(
        kafka,
        [topics.outcomes, topics.deliveries, topics.deadLetter].map((topic) => ({ topic, numPartitions: config.topicPartitions })),
      )
      await producer.start()
      await worker.start()
      await consumer.start()
    },
    shutdownSteps,
    stop: () =>
      (stopping ??= (async () => {
        for (const step of shutdownSteps()) await step.run().catch((err: unknown) => app.log.error({ err, step: step.name }, 'shutdown step failed'))
      })()),
    async health() {
      const parts = await Promise.all(components().map(async (c) => ({ id: c.id, ...(await c.health()) })))
      return { ok: parts.every((p) => p.ok), detail: parts.map((p) => `${p.id}: ${p.detail}`).join('; ') }
    },
  }
}
