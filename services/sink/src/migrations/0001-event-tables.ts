import type { Migration } from './migration.ts'

/**
 * Tokens of this many recent inserts per table are remembered, so a batch replayed with the
 * same topic/partition/offset-range token is dropped by ClickHouse (MergeTree keeps no
 * deduplication log without it).
 */
export const DEDUPLICATION_WINDOW = 10_000

const SUB_IDS = `sub1 String, sub2 String, sub3 String, sub4 String, sub5 String`

export const eventTables: Migration = {
  version: 1,
  name: 'clicks, postbacks and conversions tables',
  statements: (db) => [
    // ReplacingMergeTree on a key that ends in click_id: a click stored twice (a replay that
    // the token did not catch, or a producer retry that wrote it twice to Kafka) collapses
    // to one row in merges and under FINAL. Every field of a click is the same in both
    // copies, so the key (campaign, time, click) is too, and so is the month partition.
    `CREATE TABLE IF NOT EXISTS ${db}.clicks (
      click_id String,
      ts DateTime64(3, 'UTC'),
      campaign_id LowCardinality(String),
      publisher_id LowCardinality(String),
      ${SUB_IDS},
      source LowCardinality(String),
      creative LowCardinality(String),
      user_key String,
      ip String COMMENT 'anonymized: IPv4 /24, IPv6 /48',
      user_agent String,
      referer String,
      destination String,
      is_bot UInt8,
      is_duplicate UInt8,
      window_seconds UInt32,
      max_window_seconds UInt32,
      inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
      INDEX click_id_bloom click_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(ts)
    ORDER BY (campaign_id, ts, click_id)
    SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}`,

    // Postbacks as received: one row per postback_id, whatever its status. Partners are the
    // natural entry point for rejection and volume questions; the click_id index serves
    // "what did the partner send for this click".
    `CREATE TABLE IF NOT EXISTS ${db}.postbacks (
      postback_id String,
      received_at DateTime64(3, 'UTC'),
      channel LowCardinality(String),
      partner_id LowCardinality(String),
      click_id String,
      event LowCardinality(String),
      txn_id String,
      revenue Decimal(18, 6),
      currency LowCardinality(String),
      status LowCardinality(String),
      conversion_ts DateTime64(3, 'UTC'),
      inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
      INDEX click_id_bloom click_id TYPE bloom_filter(0.001) GRANULARITY 1,
      INDEX postback_id_bloom postback_id TYPE bloom_filter(0.001) GRANULARITY 1
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(received_at)
    ORDER BY (partner_id, received_at, postback_id)
    SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}`,

    // One row per conversion: every version of a conversion shares its conversion_id, the
    // whole sorting key, so ReplacingMergeTree(version) keeps the highest version (the latest
    // status). No time partition: a status update could in principle carry another
    // timestamp, and versions in different partitions would never be collapsed.
    `CREATE TABLE IF NOT EXISTS ${db}.conversions (
      conversion_id String,
      version UInt64,
      postback_id String,
      click_id String,
      partner_id LowCardinality(String),
      event LowCardinality(String),
      txn_id String,
      status LowCardinality(String),
      outcome LowCardinality(String),
      reason LowCardinality(String),
      campaign_id LowCardinality(String),
      publisher_id LowCardinality(String),
      ${SUB_IDS},
      click_ts DateTime64(3, 'UTC'),
      conversion_ts DateTime64(3, 'UTC'),
      ctit_ms Int64,
      revenue Decimal(18, 6),
      payout Decimal(18, 6),
      currency LowCardinality(String),
      is_fast UInt8,
      updated_at DateTime64(3, 'UTC'),
      inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
      INDEX click_id_bloom click_id TYPE bloom_filter(0.001) GRANULARITY 1,
      INDEX campaign_set campaign_id TYPE set(1000) GRANULARITY 4,
      INDEX conversion_ts_minmax conversion_ts TYPE minmax GRANULARITY 1
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY conversion_id
    SETTINGS non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}`,
  ],
}
