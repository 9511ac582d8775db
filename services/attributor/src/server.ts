import Fastify from 'fastify'
import { createClickIdKeyring } from '@clickjoin/click-id'
import { topicNames } from '@clickjoin/contracts'
import { createRedisClient, duplicateClient, waitReady } from '@clickjoin/redis'
import {
  componentLifecycle,
  createMetricsRegistry,
  healthRoutes,
  loggerOptions,
  runService,
  type Component,
} from '@clickjoin/service-runtime'
import { createColdTierClient } from './cold-tier.ts'
import { clickHouseUrlFrom, loadAttributorConfig } from './config.ts'
import { createAttributorMetrics } from './metrics.ts'
import { attributorConfigFromEnv, createAttributorService } from './service.ts'

// The only process entry of the attributor: configuration once (a bad variable exits 78
// naming it), every dependency built here and passed in, one shutdown against one deadline.
await runService({
  name: 'attributor',
  loadConfig: loadAttributorConfig,
  create({ env, clickIdKeys }) {
    const app = Fastify({ logger: loggerOptions('attributor', env.LOG_LEVEL) })
    const log = app.log
    if (clickIdKeys.development) log.warn({}, 'CLICK_ID_KEYS not set: verifying click IDs with the built-in development key')
    const keyring = createClickIdKeyring({ keys: clickIdKeys.keys, currentKeyId: clickIdKeys.currentKeyId })

    const registry = createMetricsRegistry('attributor')
    const metrics = createAttributorMetrics(registry)
    const kafka = {
      brokers: env.KAFKA_BROKERS,
      clientId: 'attributor',
      log: ({ level, message, ...rest }: { level: string; message: string; [k: string]: unknown }) => log[level === 'error' ? 'error' : 'warn'](rest, message),
    }
    // One Redis, or a Redis Cluster when REDIS_CLUSTER_NODES is set: the key layout puts what
    // one script touches in one hash slot either way (docs/redis-cluster.md). Script calls go
    // straight to their node; the few single-key commands are auto-pipelined.
    const redis = createRedisClient({
      ...(env.REDIS_CLUSTER_NODES ? { clusterNodes: env.REDIS_CLUSTER_NODES.join(',') } : { url: env.REDIS_URL }),
      connectionName: 'attributor',
      enableAutoPipelining: true,
    })
    const subscriber = duplicateClient(redis)
    for (const connection of [redis, subscriber]) {
      connection.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'))
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

    // Listening first: /healthz answers and /readyz says what is still missing while we connect.
    const http: Component = {
      id: 'http',
      async start() {
        await app.register(healthRoutes, { components: () => attributor.components(), registry })
        await app.listen({ port: env.PORT, host: env.HOST })
      },
      stop: () => app.close(),
      health: () => ({ ok: true, detail: 'listening' }),
    }
    const connections: Component = {
      id: 'connections',
      // Subscribing before the connection is ready races ioredis' ready check (INFO) on it;
      // /readyz says Redis is missing meanwhile, and waiting is all there is to do.
      async start() {
        for (const client of [redis, subscriber]) {
          for (;;) {
            try {
              await waitReady(client, 10_000)
              break
            } catch (err) {
              log.warn({ err: err instanceof Error ? err.message : String(err) }, 'waiting for Redis')
            }
          }
        }
      },
      async stop() {
        await Promise.all([redis.quit(), subscriber.quit()])
        await clickhouse.close()
      },
      health: () => ({ ok: redis.status === 'ready', detail: `redis ${redis.status}` }),
    }
    const lifecycle = componentLifecycle([http, connections, attributor], log)
    return {
      log,
      async start() {
        await lifecycle.start()
        log.info(
          { topicPrefix: env.KAFKA_TOPIC_PREFIX, keyPrefix: env.REDIS_KEY_PREFIX, graceMs: env.ATTRIBUTION_GRACE_MS, hotSeconds: env.ATTRIBUTOR_HOT_SECONDS, clickhouse: clickHouseUrlFrom(env) },
          'attributor running',
        )
      },
      stop: () => lifecycle.stop(),
    }
  },
})
