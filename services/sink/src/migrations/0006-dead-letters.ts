import type { Migration } from './migration.ts'
import { DEDUPLICATION_WINDOW } from './0001-event-tables.ts'

/**
 * `dead_letters` (SPEC §6): every message sent to the dead-letter topic, and every row
 * ClickHouse refused for its content (which then no longer stalls its partition). One row per
 * failed message: the key ends in its source position, so a re-sent dead letter replaces itself.
 * `payload` is the original message value (`payload_encoding` utf8 or base64): what
 * `clickjoin dead-letters replay` sends back to `source_topic` once the cause is fixed.
 */
export const deadLetters: Migration = {
  version: 6,
  name: 'dead_letters table',
  statements: (db) => [
    `CREATE TABLE IF NOT EXISTS ${db}.dead_letters (
      received_at DateTime64(3, 'UTC'),
      source_topic LowCardinality(String),
      partition UInt32,
      offset UInt64,
      key String,
      reason String,
      payload String,
      payload_encoding LowCardinality(String),
      inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree
    ORDER BY (source_topic, partition, offset)
    SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}`,
  ],
}
