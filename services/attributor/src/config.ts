import { z } from 'zod'
import { DEVELOPMENT_CLICK_ID_KEYS, parseClickIdKeys } from '@clickjoin/click-id'
import {
  ConfigError,
  brokerList,
  durationMs,
  logLevel,
  nodeEnv,
  parseEnv,
  parsedWith,
  port,
  positiveInt,
  redisFields,
  url,
} from '@clickjoin/config'

export const AttributorEnv = z.object({
  /** Kafka bootstrap brokers. */
  KAFKA_BROKERS: brokerList('127.0.0.1:9092'),
  /** Prefix of every topic name (tests and shared brokers). */
  KAFKA_TOPIC_PREFIX: z.string().regex(/^[A-Za-z0-9._-]*$/, 'must use only A-Z a-z 0-9 . _ -').default(''),
  /** Partition count of clicks, conversions, outcomes and dead_letter when this service creates them. */
  KAFKA_TOPIC_PARTITIONS: positiveInt(6),
  REDIS_URL: url({ protocols: ['redis:', 'rediss:'], default: 'redis://127.0.0.1:6379' }),
  /** `host:port,…`: Redis Cluster mode (ioredis' Cluster client), instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: redisFields.REDIS_CLUSTER_NODES,
  /** Prefix of every Redis key, shared with the config store; no braces (they would pick the Redis Cluster slot). */
  REDIS_KEY_PREFIX: z.string().min(1).regex(/^[^{}]*$/, 'must not contain { or } (they would decide the Redis Cluster hash slot)').default('cj:'),
  /** Click ID keys "<keyId>:<secret>,…"; the development key when unset outside production. */
  CLICK_ID_KEYS: parsedWith(parseClickIdKeys).optional(),
  /** The key new click IDs are signed with; only used to validate the keyring here. */
  CLICK_ID_KEY_ID: parsedWith((text) => {
    if (!/^\d{1,3}$/.test(text.trim())) throw new Error('must be a key ID 0–255')
    return Number(text.trim())
  }).optional(),
  NODE_ENV: nodeEnv(),
  LOG_LEVEL: logLevel(),
  /** Health and metrics HTTP port. */
  PORT: port(8081),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** How long a conversion waits for its click before it is rejected as unknown_click. */
  ATTRIBUTION_GRACE_MS: durationMs(60_000),
  /** Consumer group: every attributor instance in it shares the partitions. */
  ATTRIBUTOR_GROUP_ID: z.string().min(1).default('attributor'),
  /** How often overdue parked conversions are decided. */
  ATTRIBUTOR_SWEEP_INTERVAL_MS: durationMs(250),
  /**
   * How long clicks and decided conversions stay in Redis (the hot tier); older ones are read
   * from ClickHouse. Must stay well above the sink's lag (docs/delivery.md).
   */
  ATTRIBUTOR_HOT_SECONDS: positiveInt(172_800),
  /** Kept beyond the hot period in Redis, for clock skew, the grace period and late postbacks. */
  ATTRIBUTOR_CLICK_TTL_MARGIN_MS: durationMs('1h'),
  /** A ClickHouse server to read older clicks and conversions from; unset → the sink's SQL endpoint. */
  CLICKHOUSE_URL: url({ protocols: ['http:', 'https:'] }).optional(),
  /** The sink's read-only SQL port on this host (embedded chDB), used when CLICKHOUSE_URL is unset. */
  CLICKHOUSE_HTTP_PORT: port(8123),
  /** The sink's database. */
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'must be a ClickHouse database name').default('clickjoin'),
  /**
   * How long the group waits for a silent member before giving its partitions to others: the
   * pause a crashed instance causes (the broker allows 6 s at least). Unset: the shared 10 s of
   * packages/kafka (docs/kafka.md), so a member killed with -9 is replaced within 15 s.
   */
  ATTRIBUTOR_SESSION_TIMEOUT_MS: durationMs().optional(),
  /** Partition batches handled at once by one instance. */
  ATTRIBUTOR_CONCURRENCY: positiveInt(4),
})
export type AttributorEnv = z.output<typeof AttributorEnv>

/** The attributor's validated environment and what follows from it. */
export interface AttributorConfig {
  env: AttributorEnv
  clickIdKeys: ReturnType<typeof clickIdKeysFrom>
}

/** Validates the environment once; a bad variable is a ConfigError naming it (exit 78). */
export function loadAttributorConfig(source: NodeJS.ProcessEnv = process.env): AttributorConfig {
  const env = parseEnv(AttributorEnv, source)
  try {
    return { env, clickIdKeys: clickIdKeysFrom(env) }
  } catch (err) {
    throw new ConfigError([{ variable: 'CLICK_ID_KEYS', message: err instanceof Error ? err.message.replace(/^CLICK_ID_KEYS: /, '') : String(err) }])
  }
}

/** The keys click IDs are verified with: the configured ones, or the development key. */
export function clickIdKeysFrom(env: AttributorEnv): { keys: Map<number, string>; currentKeyId: number; development: boolean } {
  if (env.CLICK_ID_KEYS === undefined) {
    if (env.NODE_ENV === 'production') throw new Error('CLICK_ID_KEYS: is required in production')
    const keys = parseClickIdKeys(DEVELOPMENT_CLICK_ID_KEYS)
    return { keys, currentKeyId: Math.max(...keys.keys()), development: true }
  }
  const keys = env.CLICK_ID_KEYS
  return { keys, currentKeyId: env.CLICK_ID_KEY_ID ?? Math.max(...keys.keys()), development: false }
}

/** Where the cold tier is read: CLICKHOUSE_URL, else the sink's SQL endpoint on this host. */
export function clickHouseUrlFrom(env: AttributorEnv): string {
  return env.CLICKHOUSE_URL ?? `http://127.0.0.1:${env.CLICKHOUSE_HTTP_PORT}`
}
