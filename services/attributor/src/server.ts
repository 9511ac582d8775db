import Fastify from 'fastify'
import { createClickIdKeyring } from '@clickjoin/click-id'
import { ConfigError, parseEnv } from '@clickjoin/config'
import { topicNames } from '@clickjoin/contracts'
import { createKafka } from '@clickjoin/kafka'
import { createRedisClient, duplicateClient, waitReady } from '@clickjoin/redis'
import { createMetricsRegistry, healthRoutes, loggerOptions, onShutdownSignals } from '@clickjoin/service-runtime'
import { createColdTierClient } from './cold-tier.ts'
import { AttributorEnv, clickHouseUrlFrom, clickIdKeysFrom } from './config.ts'
import { createAttributorMetrics } from './metrics.ts'
import { attributorConfigFromEnv, createAttributorService } from './service.ts'

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
// One Redis, or a Redis Cluster when REDIS_CLUSTER_NODES is set: the key layout puts what one
// script touches in one hash slot either way (docs/redis-cluster.md). Reads go out command by
// command, auto-pipelined per node.
const redis = createRedisClient({
  ...(env.REDIS_CLUSTER_NODES ? { clusterNodes: env.REDIS_CLUSTER_NODES.join(',') } : { url: env.REDIS_URL }),
  connectionName: 'attributor',
  enableAutoPipelining: true,
})
const subscriber = duplicateClient(redis)
for (const connection of [redis, subscriber]) {
  connection.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'))
}
const clickhouse = createColdTierClient(clickHouseUrlFrom(env))
const attributor = createAttributorService(attributorConfigFromEnv(env, topicNames(env.KAFKA_TOPIC_PREFIX)), {
  kafka,
  redis,
  subscriber,
  clickhouse,
  keyring,
  metrics,
  log,
})

await app.register(healthRoutes, {
  components: () => attributor.components(),
  registry,
})

onShutdownSignals(
  () => [
    { name: 'stop consuming and sweeping, flush the producer', run: () => attributor.stop() },
    { name: 'close the health server', run: () => app.close() },
    { name: 'quit redis', run: async () => void (await Promise.all([redis.quit(), subscriber.quit()])) },
    { name: 'close clickhouse', run: () => clickhouse.close() },
  ],
  log,
)

// Listening first: /healthz answers and /readyz says what is still missing while we connect.
await app.listen({ port: env.PORT, host: env.HOST })

// Subscribing before the connection is ready races ioredis' ready check (INFO) on it.
// /readyz says Redis is missing meanwhile; waiting is all there is to do.
await Promise.all(
  [redis, subscriber].map(async (c) => {
    for (;;) {
      try {
        return await waitReady(c, 10_000)
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'waiting for Redis')
      }
    }
  }),
)
await attributor.start()
log.info(
  { topicPrefix: env.KAFKA_TOPIC_PREFIX, keyPrefix: env.REDIS_KEY_PREFIX, graceMs: env.ATTRIBUTION_GRACE_MS, hotSeconds: env.ATTRIBUTOR_HOT_SECONDS, clickhouse: clickHouseUrlFrom(env) },
  'attributor running',
)
