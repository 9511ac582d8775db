import path from 'node:path'
import { z } from 'zod'
import {
  adminFields,
  adminToken,
  bool,
  clickIdFields,
  clickIdSettings,
  durationMs,
  kafkaFields,
  kafkaSettings,
  parseEnv,
  port,
  positiveInt,
  redisFields,
  redisSettings,
  serviceFields,
  throwProblems,
  url,
  type ClickIdSettings,
  type ConfigProblem,
  type KafkaSettings,
  type RedisSettings,
} from '@clickjoin/config'

/** The ingest service's environment, validated once at start (SPEC §7): the shared fields and its own. */
export const IngestEnv = z.object({
  ...serviceFields,
  ...kafkaFields,
  ...redisFields,
  ...clickIdFields,
  /** HTTP port of the edge; 0 lets the OS choose (tests). */
  PORT: port(8080),
  ...adminFields,
  /** Base of the tracking links the admin API hands out; default this service's own address and port. */
  PUBLIC_URL: url({ protocols: ['http:', 'https:'] }).optional(),
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
  /**
   * Connections waiting to be accepted (listen(2) backlog; the kernel caps it at
   * net.core.somaxconn). Node's default, 511, is less than a burst of new visitors: an
   * overflowing queue drops their SYNs, which the client resends only after 1 s, then 3 s.
   */
  INGEST_LISTEN_BACKLOG: positiveInt(4_096),
  /** Behind a load balancer: take the client IP from X-Forwarded-For. */
  INGEST_TRUST_PROXY: bool(false),
  /**
   * Plain tracking-link clicks are answered before fastify's request handling (docs/ingest.md,
   * "The fast path"); false sends every request through fastify.
   */
  INGEST_FAST_CLICK_PATH: bool(true),
  /** Where unknown campaign IDs are sent; unset: 404. */
  INGEST_UNKNOWN_CAMPAIGN_URL: url({ protocols: ['http:', 'https:'] }).optional(),
  /** The data directory of `npm start`; the journal's default home. */
  CLICKJOIN_DATA_DIR: z.string().min(1).optional(),
  /**
   * This replica's journal of browser events waiting for Kafka (one directory per replica);
   * default `<CLICKJOIN_DATA_DIR or ./.data>/ingest-journal-<PORT>`.
   */
  INGEST_JOURNAL_DIR: z.string().min(1).optional(),
  /** Undelivered bytes the journal may hold; beyond, browser routes answer 503 (SPEC §2). */
  INGEST_JOURNAL_MAX_BYTES: positiveInt(1024 ** 3),
  /** Size of one journal file; delivered files are deleted whole. */
  INGEST_JOURNAL_SEGMENT_BYTES: positiveInt(64 * 1024 ** 2),
  /** A click or pixel waits this long for Kafka's ack before it is journaled instead. */
  INGEST_JOURNAL_FALLBACK_MS: durationMs(500),
})
export type IngestEnv = z.output<typeof IngestEnv>

/** Development-only click ID key: anyone can forge click IDs signed with it. */

export interface IngestConfig extends KafkaSettings, RedisSettings, ClickIdSettings {
  nodeEnv: IngestEnv['NODE_ENV']
  logLevel: IngestEnv['LOG_LEVEL']
  port: number
  host: string
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
  /** INGEST_FAST_CLICK_PATH. */
  fastClickPath: boolean
  listenBacklog: number
  unknownCampaignUrl: string | undefined
  journalDir: string
  journalMaxBytes: number
  journalSegmentBytes: number
  journalFallbackMs: number
  /** Development defaults in use, to log once at start. */
  warnings: string[]
}

/** Reads and checks the environment; throws ConfigError naming every bad variable. */
export function loadIngestConfig(env: Readonly<Record<string, string | undefined>> = process.env): IngestConfig {
  const e = parseEnv(IngestEnv, env)
  const problems: ConfigProblem[] = []
  const warnings: string[] = []

  const clickIds = clickIdSettings(e, problems, warnings)
  const token = adminToken(e, 'the admin API', problems, warnings)
  throwProblems(problems)

  return {
    nodeEnv: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    port: e.PORT,
    host: e.HOST,
    ...kafkaSettings(e),
    ...redisSettings(e),
    ...clickIds,
    adminToken: token,
    publicUrl: (e.PUBLIC_URL ?? defaultPublicUrl(e.HOST, e.PORT)).replace(/\/+$/, ''),
    kafkaAckTimeoutMs: e.INGEST_KAFKA_ACK_TIMEOUT_MS,
    kafkaLingerMs: e.INGEST_KAFKA_LINGER_MS,
    kafkaMaxQueued: e.INGEST_KAFKA_MAX_QUEUED,
    kafkaMaxInFlight: e.INGEST_KAFKA_MAX_IN_FLIGHT,
    retryAfterSeconds: e.INGEST_RETRY_AFTER_SECONDS,
    bodyLimitBytes: e.INGEST_BODY_LIMIT_BYTES,
    maxEventLoopDelayMs: e.INGEST_MAX_EVENT_LOOP_DELAY_MS,
    trustProxy: e.INGEST_TRUST_PROXY,
    fastClickPath: e.INGEST_FAST_CLICK_PATH,
    listenBacklog: e.INGEST_LISTEN_BACKLOG,
    unknownCampaignUrl: e.INGEST_UNKNOWN_CAMPAIGN_URL,
    journalDir: e.INGEST_JOURNAL_DIR ?? path.join(e.CLICKJOIN_DATA_DIR ?? '.data', `ingest-journal-${e.PORT}`),
    journalMaxBytes: e.INGEST_JOURNAL_MAX_BYTES,
    journalSegmentBytes: e.INGEST_JOURNAL_SEGMENT_BYTES,
    journalFallbackMs: e.INGEST_JOURNAL_FALLBACK_MS,
    warnings,
  }
}

/** The service's own address: a wildcard host is reached on the loopback address. */
function defaultPublicUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port === 0 ? 8080 : port}`
}
