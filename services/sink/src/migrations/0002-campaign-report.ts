import type { Migration } from './migration.ts'

export const campaignReport: Migration = {
  version: 2,
  name: 'campaign_report view with exact pre-aggregated clicks',
  statements: (db) => [
    // Clicks per day/campaign/publisher pre-aggregated as exact sets of click IDs, not
    // counters: a click inserted twice adds the same ID to the same set, so the figure stays
    // exact under redeliveries without waiting for merges.
    `CREATE TABLE IF NOT EXISTS ${db}.clicks_daily (
      day Date,
      campaign_id LowCardinality(String),
      publisher_id LowCardinality(String),
      clicks AggregateFunction(uniqExact, String),
      unique_clicks AggregateFunction(uniqExact, String)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(day)
    ORDER BY (campaign_id, day, publisher_id)`,

    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.clicks_daily_mv TO ${db}.clicks_daily AS
    SELECT
      toDate(ts, 'UTC') AS day,
      campaign_id,
      publisher_id,
      uniqExactState(click_id) AS clicks,
      uniqExactStateIf(click_id, is_bot = 0 AND is_duplicate = 0) AS unique_clicks
    FROM ${db}.clicks
    GROUP BY day, campaign_id, publisher_id`,

    // Clicks stored before the view existed. Adding IDs to a set twice changes nothing, so a
    // re-run of this migration (crash before it was recorded) stays exact.
    `INSERT INTO ${db}.clicks_daily
    SELECT
      toDate(ts, 'UTC') AS day,
      campaign_id,
      publisher_id,
      uniqExactState(click_id),
      uniqExactStateIf(click_id, is_bot = 0 AND is_duplicate = 0)
    FROM ${db}.clicks
    GROUP BY day, campaign_id, publisher_id`,

    // Conversions change status, so they are aggregated at query time over FINAL (the latest
    // version of each): a counter pre-aggregated per insert could not take an approval back.
    // Days are UTC days of the conversion time.
    `CREATE OR REPLACE VIEW ${db}.campaign_report AS
    WITH
      click_totals AS (
        SELECT day, campaign_id, publisher_id,
               uniqExactMerge(clicks) AS clicks,
               uniqExactMerge(unique_clicks) AS unique_clicks
        FROM ${db}.clicks_daily
        GROUP BY day, campaign_id, publisher_id
      ),
      conversion_totals AS (
        SELECT toDate(conversion_ts, 'UTC') AS day, campaign_id, publisher_id,
               count() AS conversions,
               sum(revenue) AS revenue,
               sum(payout) AS payout
        FROM ${db}.conversions FINAL
        WHERE outcome = 'attributed' AND status = 'approved'
        GROUP BY day, campaign_id, publisher_id
      )
    SELECT
      day,
      campaign_id,
      publisher_id,
      clicks,
      unique_clicks,
      conversions,
      revenue,
      payout,
      if(unique_clicks = 0, 0, conversions / unique_clicks) AS cr,
      if(unique_clicks = 0, toDecimal128(0, 6), payout / unique_clicks) AS epc
    FROM click_totals
    FULL OUTER JOIN conversion_totals USING (day, campaign_id, publisher_id)`,
  ],
}
