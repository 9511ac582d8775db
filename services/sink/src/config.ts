import { z } from 'zod'
import { ConfigError, durationMs, kafkaFields, parsedWith, parseEnv, port, positiveInt, serviceFields, url } from '@clickjoin/config'

/** A ClickHouse identifier we can splice into DDL unquoted. */
function databaseName(text: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(text)) {
    throw new Error(`must be a database name of A-Z a-z 0-9 _ (not starting with a digit), got "${text}"`)
  }
  return text
}

/** Days to keep rows; 0 keeps them forever. */
function retentionDays(defaultDays: number) {
  return parsedWith((text) => {
    if (!/^\d{1,6}$/.test(text.trim())) throw new Error(`must be a whole number of days (0 = keep forever), got "${text}"`)
    return Number(text.trim())
  }, String(defaultDays))
}

/** `name:password,…` → name → password; names as ClickHouse user names, passwords non-empty. */
export function sqlUsers(text: string): Map<string, string> {
  const users = new Map<string, string>()
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const colon = entry.indexOf(':')
    const name = entry.slice(0, colon)
    if (colon <= 0 || !/^[A-Za-z0-9_.-]{1,64}$/.test(name) || colon === entry.length - 1) {
      throw new Error('must be name:password pairs separated by commas (names of A-Z a-z 0-9 _ . -, non-empty passwords)')
    }
    if (users.has(name)) throw new Error(`names user ${name} twice`)
    users.set(name, entry.slice(colon + 1))
  }
  return users
}

/** Whether a listen address reaches only this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

export const SinkEnv = z.object({
  ...serviceFields,
  ...kafkaFields,
  /** Health and metrics port. */
  PORT: port(8082),
  /** Consumer group shared by every sink instance. */
  SINK_CONSUMER_GROUP: z.string().default('clickjoin-sink'),
  /** A ClickHouse server; unset → the embedded engine (chDB) under CLICKHOUSE_DATA_DIR. */
  CLICKHOUSE_URL: url({ protocols: ['http:', 'https:'] }).optional(),
  CLICKHOUSE_DATA_DIR: z.string().default('./.data/clickhouse'),
  CLICKHOUSE_DATABASE: parsedWith(databaseName, 'clickjoin'),
  /** Read-only SQL over HTTP, embedded mode only. */
  CLICKHOUSE_HTTP_PORT: port(8123),
  /** Where SQL over HTTP listens; beyond loopback only with CLICKHOUSE_HTTP_USERS. */
  CLICKHOUSE_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  /** `name:password,…`: SQL over HTTP then requires one of them (basic auth or X-ClickHouse-User/Key). */
  CLICKHOUSE_HTTP_USERS: parsedWith(sqlUsers, ''),
  /** An insert goes when a table's pending rows reach this count… */
  SINK_BATCH_MAX_ROWS: positiveInt(50_000),
  /** …or this many bytes of JSON… */
  SINK_BATCH_MAX_BYTES: positiveInt(8 * 1024 * 1024),
  /** …or the oldest pending row has waited this long… */
  SINK_BATCH_MAX_WAIT: durationMs('1s'),
  /**
   * …or no new partition batch arrived for this long. 0: the fetch round is complete when the
   * event loop turns (kafkajs hands its batches over together), so no fixed wait before an insert.
   */
  SINK_BATCH_QUIET: durationMs('0'),
  /**
   * A table's inserts at least this far apart: at a trickle, rounds join (under load, no wait).
   * Every insert is a new part (files, merges later): at a trickle its cost is the sink's CPU.
   * This one holds `conversions`, whose rows a postback waits for (postback → row ≤ 2 s)…
   */
  SINK_BATCH_MIN_INTERVAL: durationMs('250ms'),
  /** …this one the raw event tables `clicks` and `postbacks`, which nothing waits for by the second. */
  SINK_BATCH_MIN_INTERVAL_RAW: durationMs('1s'),
  /**
   * Rows handed to the writer and not yet acknowledged by ClickHouse beyond which the consumer
   * waits for the insert before fetching on (memory bound; back-pressure while ClickHouse is down).
   */
  SINK_MAX_PENDING_ROWS: positiveInt(100_000),
  /**
   * A fetch is answered once this many bytes are there or SINK_FETCH_MAX_WAIT passed: at a
   * trickle, a few larger fetch rounds per second instead of one per message.
   */
  SINK_FETCH_MIN_BYTES: positiveInt(256 * 1024),
  SINK_FETCH_MAX_WAIT: durationMs('100ms'),
  /** Largest Kafka fetch per partition; large fetches make large inserts. */
  SINK_FETCH_MAX_BYTES_PER_PARTITION: positiveInt(8 * 1024 * 1024),
  /** A member that stops heartbeating (crashed) leaves the group after this; ≥ 6s (broker minimum). See docs/kafka.md. */
  SINK_SESSION_TIMEOUT: durationMs('10s'),
  /** Longest pause between retries of a failed insert. */
  SINK_RETRY_MAX_BACKOFF: durationMs('10s'),
  CLICKS_TTL_DAYS: retentionDays(0),
  POSTBACKS_TTL_DAYS: retentionDays(0),
  CONVERSIONS_TTL_DAYS: retentionDays(0),
  DEAD_LETTERS_TTL_DAYS: retentionDays(0),
  SHUTDOWN_DEADLINE: durationMs('30s'),
})
export type SinkConfig = z.output<typeof SinkEnv>

export function sinkConfigFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): SinkConfig {
  const config = parseEnv(SinkEnv, env)
  // Every click row is behind this endpoint: never open to the network without credentials.
  if (!isLoopbackHost(config.CLICKHOUSE_HTTP_HOST) && config.CLICKHOUSE_HTTP_USERS.size === 0) {
    throw new ConfigError([
      {
        variable: 'CLICKHOUSE_HTTP_HOST',
        message: `SQL over HTTP refuses to listen on ${config.CLICKHOUSE_HTTP_HOST} without CLICKHOUSE_HTTP_USERS (name:password,…)`,
      },
    ])
  }
  return config
}
