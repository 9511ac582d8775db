import type { Migration } from './migration.ts'

/** The name of the projection on `clicks` that campaign_report's click counts read. */
export const CLICKS_REPORT_PROJECTION = 'report_daily'

/**
 * The click counts as the projection stores them and the view asks for them: the view's
 * expressions must be the projection's for ClickHouse to answer from it.
 */
const DAILY_CLICK_COUNTS = `
      toDate(ts, 'UTC') AS day,
      campaign_id,
      publisher_id,
      count() AS clicks,
      countIf(is_bot = 0 AND is_duplicate = 0) AS unique_clicks`

/**
 * campaign_report counts clicks from counters instead of sets of click IDs (docs/schema.md,
 * "Reports at volume"). Every click is stored once — the sink leaves out clicks already stored
 * (src/click-dedup.ts) — so a plain count is exact. The counts live in a projection of
 * `clicks`: written in the same part as the rows they count (an insert that lands, lands with
 * its counts; a crash mid-insert leaves neither), and rebuilt from the deduplicated rows when
 * ReplacingMergeTree merges parts, so a copy that reached the table some other way is counted
 * once again after the merge.
 */
export const reportAtVolume: Migration = {
  version: 4,
  name: 'campaign_report from per-day click counters (a projection of clicks), not uniqExact states',
  statements: (db) => [
    // ReplacingMergeTree refuses projections unless told what a merge does with them.
    `ALTER TABLE ${db}.clicks MODIFY SETTING deduplicate_merge_projection_mode = 'rebuild'`,

    `ALTER TABLE ${db}.clicks ADD PROJECTION IF NOT EXISTS ${CLICKS_REPORT_PROJECTION} (
      SELECT ${DAILY_CLICK_COUNTS}
      GROUP BY day, campaign_id, publisher_id
    )`,

    // Existing data: one merge per partition collapses the copies stored before the sink
    // filtered them, and writes the projection into every part. A one-time cost of about one
    // rewrite of `clicks`; re-running it on a merged table rewrites it again but changes
    // nothing. Until it ends, parts without the projection are simply read row by row.
    `OPTIMIZE TABLE ${db}.clicks FINAL`,

    // Same name and columns as before (SPEC §6); conversions unchanged: aggregated at query
    // time over FINAL, because a status update can take an approval back.
    `CREATE OR REPLACE VIEW ${db}.campaign_report AS
    WITH
      click_totals AS (
        SELECT ${DAILY_CLICK_COUNTS}
        FROM ${db}.clicks
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

    // The sets of click IDs are no longer read: stop filling them, then drop them.
    `DROP VIEW IF EXISTS ${db}.clicks_daily_mv`,
    `DROP TABLE IF EXISTS ${db}.clicks_daily`,
  ],
}
