import { z } from 'zod'
import { brokerList, durationMs, logLevel, nodeEnv, parseEnv, parsedWith, port, positiveInt, url, ConfigError } from '@clickjoin/config'
import { parseAllowedNetworks, type AllowedNetworks } from './domain/address-policy.ts'
import type { BackoffPolicy } from './domain/backoff.ts'

const DEV_ADMIN_TOKEN = 'dev-admin-token'

export const DispatcherEnv = z.object({
  /** Kafka bootstrap brokers. */
  KAFKA_BROKERS: brokerList('127.0.0.1:9092'),
  /** Prefix of every topic name (tests and shared brokers). */
  KAFKA_TOPIC_PREFIX: z.string().regex(/^[A-Za-z0-9._-]*$/, 'must use only A-Z a-z 0-9 . _ -').default(''),
  /** Partition count of the topics when this service creates them. */
  KAFKA_TOPIC_PARTITIONS: positiveInt(6),
  REDIS_URL: url({ protocols: ['redis:', 'rediss:'], default: 'redis://127.0.0.1:6379' }),
  /** Prefix of every Redis key, shared with the config store (publishers live under it). */
  REDIS_KEY_PREFIX: z.string().min(1).default('cj:'),
  NODE_ENV: nodeEnv(),
  LOG_LEVEL: logLevel(),
  /** Health, metrics and redeliver HTTP port; PORT when unset (SPEC §8 default 8083). */
  DISPATCHER_PORT: port().optional(),
  PORT: port(8083),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** Bearer token of `POST /admin/redeliver`; the development token outside production. */
  ADMIN_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  /** Consumer group of the outcomes topic: every dispatcher instance shares its partitions. */
  DISPATCHER_GROUP_ID: z.string().min(1).default('dispatcher'),
  /** How long the group waits for a silent member before giving its partitions to others. */
  DISPATCHER_SESSION_TIMEOUT_MS: durationMs('30s'),
  /** How long a failing delivery keeps being retried after its first attempt, in hours. */
  DISPATCH_RETRY_HOURS: z.coerce.number().positive('must be a positive number of hours').max(24 * 365).default(72),
  /** Wait before the second attempt; it doubles with each further one (with jitter). */
  DISPATCH_FIRST_RETRY_DELAY_MS: durationMs('10s'),
  /** The longest wait between two attempts. */
  DISPATCH_MAX_RETRY_DELAY_MS: durationMs('6h'),
  /** A call without a complete answer by then failed (SPEC §5b: 10 s). */
  DISPATCH_TIMEOUT_MS: durationMs('10s'),
  /** Comma-separated CIDRs a destination may resolve into although they are not public. */
  DISPATCH_ALLOW_NETWORKS: parsedWith(parseAllowedNetworks, ''),
  /** Calls in flight at once, over every host. */
  DISPATCH_CONCURRENCY: positiveInt(256),
  /** Calls in flight at once to one host: a slow host holds at most this many. */
  DISPATCH_HOST_CONCURRENCY: positiveInt(8),
  /** Consecutive failures (timeouts, connection errors, 5xx, 429) that open a host's circuit. */
  DISPATCH_BREAKER_FAILURES: positiveInt(5),
  /** How long an open circuit holds a host's deliveries before one probe call. */
  DISPATCH_BREAKER_COOLDOWN_MS: durationMs('30s'),
  /** How often the due deliveries are looked for when there is nothing to do. */
  DISPATCH_POLL_INTERVAL_MS: durationMs(200),
  /**
   * How long a claimed delivery stays with the instance that claimed it; when that instance
   * dies, another one (or its restart) attempts it again after this. Longer than the timeout.
   */
  DISPATCH_LEASE_MS: durationMs().optional(),
  /** How long failed and refused deliveries stay in Redis, for `clickjoin redeliver`. */
  DISPATCH_KEEP_FINISHED_MS: durationMs('7d'),
  /** How long delivered ones stay (they dedupe a replayed outcome and can be redelivered meanwhile). */
  DISPATCH_KEEP_DELIVERED_MS: durationMs('1d'),
})
export type DispatcherEnv = z.output<typeof DispatcherEnv>

export interface DispatcherConfig {
  kafkaBrokers: string[]
  topicPrefix: string
  topicPartitions: number
  redisUrl: string
  redisKeyPrefix: string
  logLevel: DispatcherEnv['LOG_LEVEL']
  port: number
  host: string
  adminToken: string
  groupId: string
  sessionTimeoutMs: number
  backoff: BackoffPolicy
  timeoutMs: number
  allowedNetworks: AllowedNetworks
  concurrency: number
  hostConcurrency: number
  breakerFailures: number
  breakerCooldownMs: number
  pollIntervalMs: number
  leaseMs: number
  keepFinishedMs: number
  keepDeliveredMs: number
  warnings: string[]
}

/** The dispatcher's configuration from the environment; a ConfigError names every bad variable. */
export function loadDispatcherConfig(env: Readonly<Record<string, string | undefined>> = process.env): DispatcherConfig {
  const e = parseEnv(DispatcherEnv, env)
  const warnings: string[] = []
  let adminToken = e.ADMIN_TOKEN
  if (!adminToken) {
    if (e.NODE_ENV === 'production') throw new ConfigError([{ variable: 'ADMIN_TOKEN', message: 'is required in production' }])
    warnings.push(`ADMIN_TOKEN not set: /admin/redeliver accepts the development token "${DEV_ADMIN_TOKEN}"`)
    adminToken = DEV_ADMIN_TOKEN
  }
  const leaseMs = e.DISPATCH_LEASE_MS ?? e.DISPATCH_TIMEOUT_MS + 20_000
  if (leaseMs <= e.DISPATCH_TIMEOUT_MS) {
    throw new ConfigError([{ variable: 'DISPATCH_LEASE_MS', message: `must be longer than DISPATCH_TIMEOUT_MS (${e.DISPATCH_TIMEOUT_MS} ms)` }])
  }
  return {
    kafkaBrokers: e.KAFKA_BROKERS,
    topicPrefix: e.KAFKA_TOPIC_PREFIX,
    topicPartitions: e.KAFKA_TOPIC_PARTITIONS,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    logLevel: e.LOG_LEVEL,
    port: e.DISPATCHER_PORT ?? e.PORT,
    host: e.HOST,
    adminToken,
    groupId: e.DISPATCHER_GROUP_ID,
    sessionTimeoutMs: e.DISPATCHER_SESSION_TIMEOUT_MS,
    backoff: {
      firstDelayMs: e.DISPATCH_FIRST_RETRY_DELAY_MS,
      maxDelayMs: e.DISPATCH_MAX_RETRY_DELAY_MS,
      retryForMs: Math.round(e.DISPATCH_RETRY_HOURS * 3_600_000),
    },
    timeoutMs: e.DISPATCH_TIMEOUT_MS,
    allowedNetworks: e.DISPATCH_ALLOW_NETWORKS,
    concurrency: e.DISPATCH_CONCURRENCY,
    hostConcurrency: e.DISPATCH_HOST_CONCURRENCY,
    breakerFailures: e.DISPATCH_BREAKER_FAILURES,
    breakerCooldownMs: e.DISPATCH_BREAKER_COOLDOWN_MS,
    pollIntervalMs: e.DISPATCH_POLL_INTERVAL_MS,
    leaseMs,
    keepFinishedMs: e.DISPATCH_KEEP_FINISHED_MS,
    keepDeliveredMs: e.DISPATCH_KEEP_DELIVERED_MS,
    warnings,
  }
}
