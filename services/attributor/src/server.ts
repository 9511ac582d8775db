import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { createConfigStore } from '@clickjoin/campaigns'
import { createClickIdKeyring } from '@clickjoin/click-id'
import { ConfigError, parseEnv } from '@clickjoin/config'
import { topicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka } from '@clickjoin/kafka'
import {
  createMetricsRegistry,
  healthRoutes,
  loggerOptions,
  onShutdownSignals,
  type Component,
} from '@clickjoin/service-runtime'
import { createAttributor } from './attributor.ts'
import { AttributorEnv, clickIdKeysFrom } from './config.ts'
import { createAttributorMetrics } from './metrics.ts'

// The composition root: configuration once, every dependency built here and passed in.
let env: AttributorEnv
try {
  env = parseEnv(AttributorEnv)
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}

const app = Fastify({ logger: loggerOptions('attributor', env.LOG_LEVEL) })
const log = app.log

let keyConfig: ReturnType<typeof clickIdKeysFrom>
try {
  keyConfig = clickIdKeysFrom(env)
} catch (error) {
  log.fatal({}, `invalid configuration: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
}
if (keyConfig.development) log.warn({}, 'CLICK_ID_KEYS not set: verifying click IDs with the built-in development key')
const keyring = createClickIdKeyring({ keys: keyConfig.keys, currentKeyId: keyConfig.currentKeyId })

const registry = createMetricsRegistry('attributor')
const metrics = createAttributorMetrics(registry)
const kafka = createKafka({
  brokers: env.KAFKA_BROKERS,
  clientId: 'attributor',
  log: ({ level, message, ...rest }) => log[level === 'error' ? 'error' : 'warn'](rest, message),
})
const producer = createBatchingProducer(kafka, { lingerMs: 2, ackTimeoutMs: 15_000 })
const redis = new Redis(env.REDIS_URL)
const subscriber = new Redis(env.REDIS_URL)
for (const connection of [redis, subscriber]) {
  connection.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'))
}
const configStore = createConfigStore({
  redis,
  subscriber,
  keyPrefix: env.REDIS_KEY_PREFIX,
  log: ({ level, message }) => log[level === 'error' ? 'error' : 'warn']({}, message),
})
const attributor = createAttributor(
  { kafka, redis, producer, campaigns: configStore, keyring, metrics, log },
  {
    topics: topicNames(env.KAFKA_TOPIC_PREFIX),
    partitions: env.KAFKA_TOPIC_PARTITIONS,
    redisKeyPrefix: env.REDIS_KEY_PREFIX,
    groupId: env.ATTRIBUTOR_GROUP_ID,
    graceMs: env.ATTRIBUTION_GRACE_MS,
    sweepIntervalMs: env.ATTRIBUTOR_SWEEP_INTERVAL_MS,
    conversionTtlSeconds: Math.ceil(env.ATTRIBUTOR_CONVERSION_TTL_MS / 1000),
    clickTtlMarginSeconds: Math.ceil((env.ATTRIBUTOR_CLICK_TTL_MARGIN_MS + env.ATTRIBUTION_GRACE_MS) / 1000),
    partitionsConsumedConcurrently: env.ATTRIBUTOR_CONCURRENCY,
    sessionTimeoutMs: env.ATTRIBUTOR_SESSION_TIMEOUT_MS,
  },
)

const redisHealth: Component = {
  id: 'redis',
  async health() {
    const started = performance.now()
    await redis.ping()
    const ms = performance.now() - started
    metrics.redisSeconds.observe({ op: 'ping' }, ms / 1000)
    return { ok: true, detail: `ping ${ms.toFixed(1)} ms` }
  },
}

await app.register(healthRoutes, {
  components: () => [redisHealth, configStore, producer, attributor],
  registry,
})

onShutdownSignals(
  () => [
    { name: 'stop consuming and sweeping', run: () => attributor.stop() },
    { name: 'flush the producer', run: () => producer.stop() },
    { name: 'stop the config store', run: () => configStore.stop() },
    { name: 'close the health server', run: () => app.close() },
    { name: 'quit redis', run: async () => void (await Promise.all([redis.quit(), subscriber.quit()])) },
  ],
  log,
)

// Listening first: /healthz answers and /readyz says what is still missing while we connect.
await app.listen({ port: env.PORT, host: env.HOST })

// Subscribing before the connection is ready races ioredis' ready check (INFO) on it.
await Promise.all(
  [redis, subscriber].map((c) => (c.status === 'ready' ? undefined : new Promise((resolve) => c.once('ready', resolve)))),
)
await producer.start()
await configStore.start()
await attributor.start()
log.info({ topicPrefix: env.KAFKA_TOPIC_PREFIX, keyPrefix: env.REDIS_KEY_PREFIX, graceMs: env.ATTRIBUTION_GRACE_MS }, 'attributor running')
