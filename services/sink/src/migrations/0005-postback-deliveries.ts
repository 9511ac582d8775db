import type { Migration } from './migration.ts'
import { DEDUPLICATION_WINDOW } from './0001-event-tables.ts'

/**
 * `postback_deliveries` (SPEC §6): every attempt of the dispatcher to call a publisher. An
 * attempt re-made after a crash keeps its delivery_id, and the key ends in it, so the
 * replacing engine keeps one row per attempt. Sorted for the questions operators ask: a
 * publisher's deliveries, one conversion's deliveries (the bloom index), by state.
 */
export const postbackDeliveries: Migration = {
  version: 5,
  name: 'postback_deliveries table',
  statements: (db) => [
    `CREATE TABLE IF NOT EXISTS ${db}.postback_deliveries (
      delivery_id String,
      job_id String,
      webhook_id String,
      conversion_id String,
      version UInt64,
      publisher_id LowCardinality(String),
      campaign_id LowCardinality(String),
      url String,
      method LowCardinality(String),
      attempt UInt32,
      status_code UInt16,
      duration_ms UInt32,
      error String,
      state LowCardinality(String),
      sent_at DateTime64(3, 'UTC'),
      next_attempt_at DateTime64(3, 'UTC'),
      inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
      INDEX conversion_id_bloom conversion_id TYPE bloom_filter(0.001) GRANULARITY 1,
      INDEX webhook_id_bloom webhook_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = ReplacingMergeTree
    ORDER BY (publisher_id, conversion_id, delivery_id)
    SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}`,
  ],
}
