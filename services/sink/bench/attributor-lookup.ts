/**
 * The attributor's cold conversion lookup as services/attributor/src/cold-tier.ts sends it to the
 * sink's SQL over HTTP (one per attributor round with a txn_id postback), for the sink's benches.
 */
export const attributorConversionColumns = `conversion_id, toString(version) AS version, postback_id, click_id, partner_id, event, txn_id,
  status, outcome, reason, campaign_id, publisher_id, sub1, sub2, sub3, sub4, sub5,
  toString(toUnixTimestamp64Milli(click_ts)) AS click_ts, toString(toUnixTimestamp64Milli(conversion_ts)) AS conversion_ts,
  toString(ctit_ms) AS ctit_ms, toString(revenue) AS revenue, toString(payout) AS payout,
  currency, is_fast, toString(toUnixTimestamp64Milli(updated_at)) AS updated_at`

export function attributorConversionLookup(database: string, conversionIds: readonly string[], columns = attributorConversionColumns): string {
  const ids = conversionIds.map((id) => `'${id.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(',')
  return `SELECT ${columns} FROM ${database}.conversions FINAL WHERE conversion_id IN [${ids}]`
}
