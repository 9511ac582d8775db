import { z } from 'zod'
import {
  adminFields,
  adminToken,
  durationMs,
  kafkaFields,
  kafkaSettings,
  parseEnv,
  parsedWith,
  port,
  positiveInt,
  redisFields,
  redisSettings,
  serviceFields,
  throwProblems,
  type ConfigProblem,
  type KafkaSettings,
  type RedisSettings,
} from '@clickjoin/config'
import { parseAllowedNetworks, type AllowedNetworks } from './domain/address-policy.ts'
import type { BackoffPolicy } from './domain/backoff.ts'


/** The dispatcher's environment, validated once at start (SPEC §5b, §7): the shared fields and its own. */
export const DispatcherEnv = z.object({
  ...serviceFields,
  ...kafkaFields,
  ...redisFields,
  /** Health, metrics and redeliver HTTP port (SPEC §8: 8083); 0 lets the OS choose (tests). */
  PORT: port(8083),
  ...adminFields,
  /** Consumer group of the outcomes topic: every dispatcher instance shares its partitions. */
  DISPATCHER_GROUP_ID: z.string().min(1).default('dispatcher'),
  /** How long the group waits for a silent member (≥ 6 s); default the shared 10 s (docs/kafka.md). */
  DISPATCHER_SESSION_TIMEOUT_MS: durationMs().optional(),
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

export interface DispatcherConfig extends KafkaSettings, RedisSettings {
  logLevel: DispatcherEnv['LOG_LEVEL']
  port: number
  host: string
  adminToken: string
  groupId: string
  sessionTimeoutMs: number | undefined
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
  /** Development defaults in use, to log once at start. */
  warnings: string[]
}

/** The dispatcher's configuration from the environment; a ConfigError names every bad variable. */
export function loadDispatcherConfig(env: Readonly<Record<string, string | undefined>> = process.env): DispatcherConfig {
  const e = parseEnv(DispatcherEnv, env)
  const problems: ConfigProblem[] = []
  const warnings: string[] = []
  const token = adminToken(e, '/admin/redeliver', problems, warnings)
  const leaseMs = e.DISPATCH_LEASE_MS ?? e.DISPATCH_TIMEOUT_MS + 20_000
  if (leaseMs <= e.DISPATCH_TIMEOUT_MS) {
    problems.push({ variable: 'DISPATCH_LEASE_MS', message: `must be longer than DISPATCH_TIMEOUT_MS (${e.DISPATCH_TIMEOUT_MS} ms)` })
  }
  throwProblems(problems)
  return {
    ...kafkaSettings(e),
    ...redisSettings(e),
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    host: e.HOST,
    adminToken: token,
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
