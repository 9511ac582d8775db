import type { RedisClient } from '@clickjoin/redis'
import { createConfigStore, type ConfigStore } from '@clickjoin/campaigns'
import type { ClickIdKeyring } from '@clickjoin/click-id'
import type { ClickHouseClient } from '@clickhouse/client'
import type { TopicNames } from '@clickjoin/contracts'
import { createFastProducer, createKafka, ensureTopics, type KafkaConnectionOptions } from '@clickjoin/kafka'
import type { Component } from '@clickjoin/service-runtime'
import { createConversionAttributor } from './attribution.ts'
import { createColdLagProbe } from './cold-lag.ts'
import { createColdTier, type ColdTier } from './cold-tier.ts'
import type { AttributorEnv } from './config.ts'
import { createAttributorConsumer, type Log } from './consumer.ts'
import type { AttributorMetrics } from './metrics.ts'
import { createOutboxPublisher, type OutboxPublisher } from './outbox.ts'
import { createAttributorStore } from './store.ts'
import { createSweeper } from './sweeper.ts'
import { createWaits } from './waits.ts'

export type { Log } from './consumer.ts'

export interface AttributorServiceConfig {
  topics: TopicNames
  /** Partition count of clicks and conversions (and thus the number of partition outboxes). */
  partitions: number
  redisKeyPrefix: string
  groupId: string
  /** How long a conversion waits for a click that has not arrived yet. */
  graceMs: number
  sweepIntervalMs: number
  /** How long clicks and decided conversions stay in Redis; older ones come from ClickHouse. */
  hotSeconds: number
  /** Added to Redis TTLs beyond the hot period (clock skew, grace, late postbacks). */
  ttlMarginSeconds: number
  /** The database holding the sink's click_lookup and conversions. */
  clickhouseDatabase: string
  partitionsConsumedConcurrently: number
  sessionTimeoutMs?: number
  /** How often the cold-tier lag is measured. */
  coldLagProbeIntervalMs?: number
}

export function attributorConfigFromEnv(env: AttributorEnv, topics: TopicNames): AttributorServiceConfig {
  return {
    topics,
    partitions: env.KAFKA_TOPIC_PARTITIONS,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    groupId: env.ATTRIBUTOR_GROUP_ID,
    graceMs: env.ATTRIBUTION_GRACE_MS,
    sweepIntervalMs: env.ATTRIBUTOR_SWEEP_INTERVAL_MS,
    hotSeconds: env.ATTRIBUTOR_HOT_SECONDS,
    ttlMarginSeconds: Math.ceil((env.ATTRIBUTOR_CLICK_TTL_MARGIN_MS + env.ATTRIBUTION_GRACE_MS) / 1000),
    clickhouseDatabase: env.CLICKHOUSE_DATABASE,
    partitionsConsumedConcurrently: env.ATTRIBUTOR_CONCURRENCY,
    // Unset: the shared session timeout of packages/kafka (10 s).
    ...(env.ATTRIBUTOR_SESSION_TIMEOUT_MS === undefined ? {} : { sessionTimeoutMs: env.ATTRIBUTOR_SESSION_TIMEOUT_MS }),
  }
}

export interface AttributorServiceDeps {
  /** kafkajs consumes and administers; the outcomes go out through @platformatic/kafka (createFastProducer). */
  kafka: KafkaConnectionOptions
  /**
   * Commands only (no subscriptions); the Lua scripts are defined on it. One Redis or a
   * Cluster (createRedisClient), with auto-pipelining for the few single-key commands (scripts bypass it).
   */
  redis: RedisClient
  /** A second connection for the config store's change subscription. */
  subscriber: RedisClient
  /** Reads older clicks and conversions (the sink's SQL endpoint or a ClickHouse server). */
  clickhouse: ClickHouseClient
  keyring: ClickIdKeyring
  metrics: AttributorMetrics
  log: Log
}

export interface AttributorService {
  readonly id: string
  readonly configStore: ConfigStore
  /** Starts the producer, the config store, the consumer and the timers, in that order. */
  start(): Promise<void>
  /** Stops consuming and sweeping, flushes the producer, stops the config store. */
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
  /** Everything /readyz reports on. */
  components(): Component[]
  /** One sweep of overdue parked postbacks (the timer calls it too). */
  sweepOverdue(): Promise<number>
}

/** The attributor composed once, for server.ts and the tests alike. */
export function createAttributorService(config: AttributorServiceConfig, deps: AttributorServiceDeps): AttributorService {
  const { redis, metrics, log } = deps
  const kafka = createKafka(deps.kafka)
  const { topics } = config
  metrics.hotPeriod.set(config.hotSeconds)

  // The fast producer: kafkajs' encoding of a round's 1,000 outcomes cost the attributor more
  // CPU than deciding them (docs/benchmarks.md, "Attributor").
  const producer = createFastProducer(deps.kafka, { lingerMs: 2, ackTimeoutMs: 15_000 })
  const configStore = createConfigStore({
    redis,
    subscriber: deps.subscriber,
    keyPrefix: config.redisKeyPrefix,
    log: ({ level, message }) => log[level === 'error' ? 'error' : 'warn']({}, message),
  })
  const waits = createWaits()
  const timedRedis = async <T>(op: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now()
    try {
      return await waits.track(op, work)
    } finally {
      metrics.redisSeconds.observe({ op }, (performance.now() - started) / 1000)
    }
  }
  const ttlSeconds = config.hotSeconds + config.ttlMarginSeconds
  const store = createAttributorStore(
    redis,
    {
      keyPrefix: config.redisKeyPrefix,
      hotSeconds: config.hotSeconds,
      clickTtlMarginSeconds: config.ttlMarginSeconds,
      conversionTtlSeconds: ttlSeconds,
    },
    timedRedis,
  )
  const coldTier = createColdTier(deps.clickhouse, config.clickhouseDatabase, { onQuery: (query) => metrics.coldQueries.inc({ query }) })
  const cold: ColdTier = {
    ...coldTier,
    clicks: (wanted) => waits.track('cold_clicks', () => coldTier.clicks(wanted)),
    conversions: (ids) => waits.track('cold_conversions', () => coldTier.conversions(ids)),
  }
  const outboxPublisher = createOutboxPublisher({ redis, producer, outcomesTopic: topics.outcomes, metrics })
  const outbox: OutboxPublisher = {
    publish: (entries) => waits.track('publish_outcomes', () => outboxPublisher.publish(entries)),
    drain: (key, options) => waits.track('drain_outbox', () => outboxPublisher.drain(key, options)),
  }
  const attributor = createConversionAttributor(
    { store, cold, campaigns: configStore, keyring: deps.keyring, metrics },
    { graceMs: config.graceMs, hotMs: config.hotSeconds * 1000 },
  )
  const coldLag = createColdLagProbe(
    { cold, metrics, log },
    { hotSeconds: config.hotSeconds, intervalMs: config.coldLagProbeIntervalMs ?? 10_000 },
  )
  const consumer = createAttributorConsumer(
    { kafka, producer, store, attributor, outbox, metrics, log, waits, onClicksRecorded: (s) => coldLag.sample(s) },
    {
      topics,
      groupId: config.groupId,
      partitionsConsumedConcurrently: config.partitionsConsumedConcurrently,
      hotSeconds: config.hotSeconds,
      ...(config.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: config.sessionTimeoutMs }),
    },
  )
  const sweeper = createSweeper({ store, attributor, outbox, log }, { intervalMs: config.sweepIntervalMs })
  const admin = kafka.admin()
  let gaugeTimer: NodeJS.Timeout | undefined
  let started = false

  async function refreshGauges(): Promise<void> {
    consumer.health() // sets the oldest-uncommitted-batch gauge
    metrics.parkedNow.set(await store.parkedCount())
    const group = await admin.fetchOffsets({ groupId: config.groupId, topics: [topics.clicks, topics.conversions] })
    for (const { topic, partitions } of group) {
      const ends = await admin.fetchTopicOffsets(topic)
      for (const end of ends) {
        const committed = partitions.find((p) => p.partition === end.partition)?.offset ?? '-1'
        const from = committed === '-1' ? BigInt(end.low) : BigInt(committed)
        metrics.consumerLag.set({ topic, partition: String(end.partition) }, Number(BigInt(end.high) - from))
      }
    }
  }

  const redisHealth: Component = {
    id: 'redis',
    async health() {
      const began = performance.now()
      await redis.ping()
      const ms = performance.now() - began
      metrics.redisSeconds.observe({ op: 'ping' }, ms / 1000)
      return { ok: true, detail: `ping ${ms.toFixed(1)} ms` }
    },
  }
  // ClickHouse is needed only for clicks and conversions older than the hot period: while it
  // is unreachable those lookups wait, everything else goes on, so it does not fail readiness.
  const clickhouseHealth: Component = { id: 'clickhouse', health: () => coldLag.health() }

  const service: AttributorService = {
    id: 'attributor',
    configStore,
    async start() {
      await ensureTopics(
        kafka,
        [topics.clicks, topics.conversions, topics.outcomes, topics.deadLetter].map((topic) => ({ topic, numPartitions: config.partitions })),
      )
      await producer.start()
      await configStore.start()
      await admin.connect()
      await consumer.start()
      sweeper.start()
      coldLag.start()
      gaugeTimer = setInterval(() => {
        refreshGauges().catch((err: unknown) => log.warn({ err }, 'could not refresh lag gauges'))
      }, 5_000)
      gaugeTimer.unref()
      started = true
    },
    async stop() {
      if (gaugeTimer) clearInterval(gaugeTimer)
      coldLag.stop()
      await consumer.stop()
      await sweeper.stop()
      await producer.stop()
      await configStore.stop()
      await admin.disconnect()
    },
    health() {
      if (!started) return { ok: false, detail: 'not started' }
      const consumerHealth = consumer.health()
      if (!consumerHealth.ok) return consumerHealth
      const sweeperHealth = sweeper.health()
      if (!sweeperHealth.ok) return sweeperHealth
      return consumerHealth
    },
    components: () => [redisHealth, configStore, producer, clickhouseHealth, service],
    sweepOverdue: () => sweeper.sweepOverdue(),
  }
  return service
}
