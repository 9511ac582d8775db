import type { Migration } from './migration.ts'

/**
 * The creation time a click ID carries (bytes 1..6 of its 24, big-endian ms; see
 * packages/click-id): the first 12 base64url characters are bytes 0..8.
 */
const CLICK_ID_CREATED_AT = `fromUnixTimestamp64Milli(toInt64(reinterpretAsUInt64(reverse(concat(unhex('0000'),
  substring(base64URLDecode(substring(click_id, 1, 12)), 2, 6))))), 'UTC')`

const LOOKUP_COLUMNS = `click_id, ${CLICK_ID_CREATED_AT} AS created_at, ts, campaign_id, publisher_id,
  sub1, sub2, sub3, sub4, sub5, window_seconds, max_window_seconds`

/**
 * The attributor's cold tier (docs/schema.md "click lookup"): what the join needs of a click,
 * ordered by the time its click ID carries. The attributor knows that time from the ID alone,
 * so a batch of lookups reads only the granules of that time range by primary key, where
 * `clicks` (ordered by campaign) would need its bloom filter over every part.
 */
export const clickLookup: Migration = {
  version: 3,
  name: 'click_lookup ordered by click-ID time, for the attributor',
  statements: (db) => [
    // ReplacingMergeTree: a click stored twice is the same row twice (same key, same values).
    `CREATE TABLE IF NOT EXISTS ${db}.click_lookup (
      click_id String,
      created_at DateTime64(3, 'UTC') COMMENT 'the time the click ID carries',
      ts DateTime64(3, 'UTC'),
      campaign_id LowCardinality(String),
      publisher_id LowCardinality(String),
      sub1 String, sub2 String, sub3 String, sub4 String, sub5 String,
      window_seconds UInt32 COMMENT 'the campaign window when the click happened',
      max_window_seconds UInt32
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(created_at)
    ORDER BY (created_at, click_id)`,

    // Only IDs in the click-ID format have a time; anything else is invalid_click_id anyway.
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.click_lookup_mv TO ${db}.click_lookup AS
    SELECT ${LOOKUP_COLUMNS}
    FROM ${db}.clicks
    WHERE match(click_id, '^[A-Za-z0-9_-]{32}$')`,

    // Clicks stored before the view existed; inserting a row twice only adds a duplicate
    // that ReplacingMergeTree collapses, so a re-run of this migration is harmless.
    `INSERT INTO ${db}.click_lookup
    SELECT ${LOOKUP_COLUMNS}
    FROM ${db}.clicks
    WHERE match(click_id, '^[A-Za-z0-9_-]{32}$')`,
  ],
}
