import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { createPublisherStore } from '@clickjoin/campaigns'
import { topicNames, type TopicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, pipelineTopicsComponent } from '@clickjoin/kafka'
import { createRedisClient, waitReady, type RedisClient } from '@clickjoin/redis'
import { componentLifecycle, createMetricsRegistry, type Component, type RunnableService } from '@clickjoin/service-runtime'
import { buildDispatcherApp } from './app.ts'
import type { DispatcherConfig } from './config.ts'
import { createDeliveryQueue, type DeliveryQueue } from './delivery-queue.ts'
import { createDeliveryWorker } from './delivery-worker.ts'
import { createHostGate } from './domain/host-gate.ts'
import { createPostbackClient, type guardedLookup } from './http-client.ts'
import { createDispatcherMetrics } from './metrics.ts'
import { createOutcomeConsumer } from './outcome-consumer.ts'

export interface DispatcherService extends RunnableService {
  app: FastifyInstance
  topics: TopicNames
  queue: DeliveryQueue
  /** In starting order; stopped in reverse. */
  components: readonly Component[]
  /** The bound HTTP address after start (PORT 0 picks a free port). */
  url(): string
}

export interface DispatcherDeps {
  logger?: FastifyServerOptions['logger']
  /** Name resolution for destinations (tests); the system resolver by default. */
  resolve?: Parameters<typeof guardedLookup>[1]
}

function redisComponent(redis: RedisClient): Component {
  return {
    id: 'redis',
    start: () => waitReady(redis),
    stop: async () => void (await redis.quit().catch(() => redis.disconnect())),
    health: () => ({ ok: redis.status === 'ready', detail: redis.status }),
  }
}

/**
 * The dispatcher (SPEC §5b) from its configuration: outcomes consumer → pending deliveries
 * in Redis → delivery worker → publishers, every attempt to the deliveries topic. Components
 * in starting order: topics, producer, Redis, the HTTP client, the worker, the consumer, the
 * HTTP listener last; stopped in reverse, so the calls in flight are recorded (Kafka and
 * Redis still open) before the producer flushes. server.ts runs it through runService; tests
 * and the benchmark create it with their own configuration and call start() and stop().
 */
export async function createDispatcherService(config: DispatcherConfig, deps: DispatcherDeps = {}): Promise<DispatcherService> {
  const topics = topicNames(config.topicPrefix)
  const registry = createMetricsRegistry('dispatcher')
  const metrics = createDispatcherMetrics(registry)
  // kafkajs' lines go to the app's log, which exists once the app is built below.
  const logTo: { app?: FastifyInstance } = {}
  const kafka = createKafka({
    brokers: config.kafkaBrokers,
    clientId: 'clickjoin-dispatcher',
    log: ({ message, ...rest }) => logTo.app?.log.debug(rest, message),
  })
  const producer = createBatchingProducer(kafka, { lingerMs: 2, ackTimeoutMs: 15_000 })
  const redis = createRedisClient({
    url: config.redisUrl,
    clusterNodes: config.redisClusterNodes?.join(','),
    connectionName: 'clickjoin-dispatcher',
    lazyConnect: true,
    enableAutoPipelining: true,
    connection: { maxRetriesPerRequest: 2, connectTimeout: 5_000 },
  })
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
  const redisClient = redisComponent(redis)

  // The closures run only once everything below exists (nothing listens before start()).
  const app = await buildDispatcherApp(
    { queue, registry, components: () => [consumer, worker, producer, redisClient], adminToken: config.adminToken, onRedeliver: () => worker.wake() },
    { logger: deps.logger },
  )
  logTo.app = app
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
    { topics, groupId: config.groupId, sessionTimeoutMs: config.sessionTimeoutMs, registry },
  )

  const components: Component[] = [
    pipelineTopicsComponent(kafka, {
      topicPrefix: config.topicPrefix,
      partitions: config.topicPartitions,
      replicationFactor: config.replicationFactor,
    }),
    producer,
    redisClient,
    { id: 'postback-client', stop: () => client.close(), health: () => ({ ok: true, detail: 'open' }) },
    worker,
    consumer,
    {
      id: 'http',
      start: async () => {
        for (const warning of config.warnings) log.warn(warning)
        await app.listen({ port: config.port, host: config.host })
        log.info({ topicPrefix: config.topicPrefix, keyPrefix: config.redisKeyPrefix, allow: config.allowedNetworks.text }, 'dispatcher running')
      },
      stop: () => app.close(),
      health: () => ({ ok: true, detail: 'listening' }),
    },
  ]
  const lifecycle = componentLifecycle(components, log)
  return {
    app,
    log,
    topics,
    queue,
    components,
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
    url() {
      const address = app.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : config.port
      return `http://127.0.0.1:${port}`
    },
  }
}
