import { z } from 'zod'
import { durationMs, kafkaFields, parsedWith, parseEnv, port, positiveInt, serviceFields, url } from '@clickjoin/config'

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
  /** An insert goes when a table's pending rows reach this count… */
  SINK_BATCH_MAX_ROWS: positiveInt(50_000),
  /** …or this many bytes of JSON… */
  SINK_BATCH_MAX_BYTES: positiveInt(8 * 1024 * 1024),
  /** …or the oldest pending row has waited this long… */
  SINK_BATCH_MAX_WAIT: durationMs('1s'),
  /** …or no new partition batch arrived for this long (the fetch round is complete). */
  SINK_BATCH_QUIET: durationMs('25ms'),
  /** Largest Kafka fetch per partition; large fetches make large inserts. */
  SINK_FETCH_MAX_BYTES_PER_PARTITION: positiveInt(8 * 1024 * 1024),
  /** A member that stops heartbeating (crashed) leaves the group after this; ≥ 6s (broker minimum). See docs/kafka.md. */
  SINK_SESSION_TIMEOUT: durationMs('10s'),
  /** Longest pause between retries of a failed insert. */
  SINK_RETRY_MAX_BACKOFF: durationMs('10s'),
  CLICKS_TTL_DAYS: retentionDays(0),
  POSTBACKS_TTL_DAYS: retentionDays(0),
  CONVERSIONS_TTL_DAYS: retentionDays(0),
  SHUTDOWN_DEADLINE: durationMs('30s'),
})
export type SinkConfig = z.output<typeof SinkEnv>

export function sinkConfigFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): SinkConfig {
  return parseEnv(SinkEnv, env)
}
