import { z } from 'zod'
import { DEVELOPMENT_CLICK_ID_KEYS, parseClickIdKeys } from '@clickjoin/click-id'
import {
  bool,
  brokerList,
  ConfigError,
  durationMs,
  logLevel,
  nodeEnv,
  parseEnv,
  parsedWith,
  port,
  positiveInt,
  url,
  type ConfigProblem,
} from '@clickjoin/config'

/** The ingest service's environment, validated once at start (SPEC §7). */
export const IngestEnv = z.object({
  NODE_ENV: nodeEnv(),
  LOG_LEVEL: logLevel('info'),
  /** HTTP port of the edge; 0 lets the OS choose (tests). */
  PORT: port(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  KAFKA_BROKERS: brokerList('127.0.0.1:9092'),
  /** Put in front of every topic name, so environments can share a broker. */
  KAFKA_TOPIC_PREFIX: z.string().regex(/^[A-Za-z0-9._-]*$/, 'may use only A-Z a-z 0-9 . _ -').default(''),
  /** Partitions of the topics this service creates when they do not exist yet. */
  KAFKA_TOPIC_PARTITIONS: positiveInt(6),
  REDIS_URL: url({ protocols: ['redis:', 'rediss:'], default: 'redis://127.0.0.1:6379' }),
  REDIS_KEY_PREFIX: z.string().default('cj:'),
  /** "<keyId>:<secret>,…"; required in production, a built-in development key otherwise. */
  CLICK_ID_KEYS: parsedWith(parseClickIdKeys).optional(),
  /** The key new click IDs are signed with; default the highest key ID. */
  CLICK_ID_KEY_ID: z.string().regex(/^\d{1,3}$/, 'must be a key ID 0–255').transform(Number).optional(),
  /** Bearer token of the admin API; required in production, `dev-admin-token` otherwise. */
  ADMIN_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
  /** Base of the tracking links the admin API hands out. */
  PUBLIC_URL: url({ protocols: ['http:', 'https:'], default: 'http://127.0.0.1:8080' }),
  /** A request waits at most this long for Kafka's acknowledgement, then gets 503. */
  INGEST_KAFKA_ACK_TIMEOUT_MS: durationMs(5_000),
  /**
   * How long the producer collects messages before sending a batch. While a batch is in
   * flight the next one fills anyway, so a short linger only adds latency to every click.
   */
  INGEST_KAFKA_LINGER_MS: durationMs(1),
  /**
   * Batches awaiting Kafka's ack at once. More than one overlaps broker round trips; clicks
   * and postbacks need no order across batches (consumers deduplicate by ID).
   */
  INGEST_KAFKA_MAX_IN_FLIGHT: positiveInt(3),
  /** Messages waiting for Kafka beyond this are refused at once with 503 (load shedding). */
  INGEST_KAFKA_MAX_QUEUED: positiveInt(50_000),
  /** Retry-After (seconds) on 503 answers. */
  INGEST_RETRY_AFTER_SECONDS: positiveInt(5),
  /** Largest request body of a postback (bytes); POST /clicks allows 4 MiB for 1,000 items. */
  INGEST_BODY_LIMIT_BYTES: positiveInt(65_536),
  /** Shed load (503) when the event loop lags more than this; 0 turns the check off. */
  INGEST_MAX_EVENT_LOOP_DELAY_MS: durationMs(1_000),
  /** Behind a load balancer: take the client IP from X-Forwarded-For. */
  INGEST_TRUST_PROXY: bool(false),
  /** Where unknown campaign IDs are sent; unset: 404. */
  INGEST_UNKNOWN_CAMPAIGN_URL: url({ protocols: ['http:', 'https:'] }).optional(),
})
export type IngestEnv = z.output<typeof IngestEnv>

/** Development-only click ID key: anyone can forge click IDs signed with it. */
const DEV_ADMIN_TOKEN = 'dev-admin-token'

export interface IngestConfig {
  nodeEnv: IngestEnv['NODE_ENV']
  logLevel: IngestEnv['LOG_LEVEL']
  port: number
  host: string
  kafkaBrokers: string[]
  topicPrefix: string
  topicPartitions: number
  redisUrl: string
  redisKeyPrefix: string
  clickIdKeys: Map<number, string>
  clickIdKeyId: number
  adminToken: string
  publicUrl: string
  kafkaAckTimeoutMs: number
  kafkaLingerMs: number
  kafkaMaxQueued: number
  kafkaMaxInFlight: number
  retryAfterSeconds: number
  bodyLimitBytes: number
  maxEventLoopDelayMs: number
  trustProxy: boolean
  unknownCampaignUrl: string | undefined
  /** Development defaults in use, to log once at start. */
  warnings: string[]
}

/** Reads and checks the environment; throws ConfigError naming every bad variable. */
export function loadIngestConfig(env: Readonly<Record<string, string | undefined>> = process.env): IngestConfig {
  const e = parseEnv(IngestEnv, env)
  const production = e.NODE_ENV === 'production'
  const problems: ConfigProblem[] = []
  const warnings: string[] = []

  let clickIdKeys = e.CLICK_ID_KEYS
  if (!clickIdKeys) {
    if (production) problems.push({ variable: 'CLICK_ID_KEYS', message: 'is required in production' })
    else warnings.push('CLICK_ID_KEYS not set: using the built-in development key (click IDs are forgeable)')
    clickIdKeys = parseClickIdKeys(DEVELOPMENT_CLICK_ID_KEYS)
  }
  const clickIdKeyId = e.CLICK_ID_KEY_ID ?? Math.max(...clickIdKeys.keys())
  if (!clickIdKeys.has(clickIdKeyId)) {
    problems.push({ variable: 'CLICK_ID_KEY_ID', message: `key ${clickIdKeyId} is not in CLICK_ID_KEYS` })
  }
  let adminToken = e.ADMIN_TOKEN
  if (!adminToken) {
    if (production) problems.push({ variable: 'ADMIN_TOKEN', message: 'is required in production' })
    else warnings.push(`ADMIN_TOKEN not set: the admin API accepts the development token "${DEV_ADMIN_TOKEN}"`)
    adminToken = DEV_ADMIN_TOKEN
  }
  if (problems.length > 0) throw new ConfigError(problems)

  return {
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    host: e.HOST,
    kafkaBrokers: e.KAFKA_BROKERS,
    topicPrefix: e.KAFKA_TOPIC_PREFIX,
    topicPartitions: e.KAFKA_TOPIC_PARTITIONS,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    clickIdKeys,
    clickIdKeyId,
    adminToken,
    publicUrl: e.PUBLIC_URL.replace(/\/+$/, ''),
    kafkaAckTimeoutMs: e.INGEST_KAFKA_ACK_TIMEOUT_MS,
    kafkaLingerMs: e.INGEST_KAFKA_LINGER_MS,
    kafkaMaxQueued: e.INGEST_KAFKA_MAX_QUEUED,
    kafkaMaxInFlight: e.INGEST_KAFKA_MAX_IN_FLIGHT,
    retryAfterSeconds: e.INGEST_RETRY_AFTER_SECONDS,
    bodyLimitBytes: e.INGEST_BODY_LIMIT_BYTES,
    maxEventLoopDelayMs: e.INGEST_MAX_EVENT_LOOP_DELAY_MS,
    trustProxy: e.INGEST_TRUST_PROXY,
    unknownCampaignUrl: e.INGEST_UNKNOWN_CAMPAIGN_URL,
    warnings,
  }
}
