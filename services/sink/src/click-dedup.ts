import type { ClickHouseClient } from '@clickjoin/clickhouse'
import type { clickRow } from './rows.ts'

export type ClickRow = ReturnType<typeof clickRow>

/** Clicks closer in time than this are looked up as one key range. */
const RANGE_GAP_MS = 60_000
/** At most this many ranges per lookup: the nearest ones are joined beyond it. */
const MAX_RANGES = 64

/**
 * The clicks of a block that `clicks` does not hold yet, each once, in block order.
 *
 * Every click is stored, and so counted by the report's projection, exactly once: a click
 * already stored (a replay whose offset range differs from the first insert's, so its token
 * does not match; the same click written twice to Kafka) is left out of the insert, and so is
 * a second copy inside the block. This is what keeps `campaign_report` exact without a set of
 * click IDs per day (docs/schema.md, "Reports at volume").
 *
 * It is exact because every copy of a click reaches the same sink (the clicks topic is keyed by
 * click ID) and the writer inserts a table's blocks one at a time, each after the previous one
 * was acknowledged: this lookup sees every earlier insert. It runs again on every retry of a
 * block, so an insert that ClickHouse stored but did not acknowledge is then a no-op.
 *
 * The lookup reads by primary key — `clicks` is ordered by (campaign_id, ts, click_id) — the
 * clicks stored in the block's time ranges for its campaigns, and the IDs are compared here:
 * sending the block's IDs in the query costs more in parsing than reading a key range (a block
 * of live clicks spans about a second).
 */
export async function withoutStoredClicks(client: ClickHouseClient, database: string, rows: readonly ClickRow[]): Promise<ClickRow[]> {
  const firstCopies: ClickRow[] = []
  const seen = new Set<string>()
  for (const row of rows) {
    if (seen.has(row.click_id)) continue
    seen.add(row.click_id)
    firstCopies.push(row)
  }
  if (firstCopies.length === 0) return firstCopies
  const rs = await client.query({ query: storedClicksQuery(database, firstCopies), format: 'JSONCompactEachRow' })
  const stored = new Set<string>()
  for (const [id] of await rs.json<[string]>()) if (seen.has(id)) stored.add(id)
  return stored.size === 0 ? firstCopies : firstCopies.filter((row) => !stored.has(row.click_id))
}

export interface LookupRange {
  from: number
  to: number
  campaigns: Set<string>
}

/**
 * The block's clicks as time ranges (epoch ms, inclusive), each with the campaigns clicked in
 * it: a new range where the clicks are more than RANGE_GAP_MS apart, and at most MAX_RANGES of
 * them (the smallest gaps are closed first).
 */
export function lookupRanges(rows: readonly ClickRow[], maxRanges = MAX_RANGES): LookupRange[] {
  const clicks = rows.map((r) => ({ t: Date.parse(r.ts), campaign: r.campaign_id })).sort((a, b) => a.t - b.t)
  const ranges: LookupRange[] = []
  for (const { t, campaign } of clicks) {
    const last = ranges[ranges.length - 1]
    if (last && t - last.to <= RANGE_GAP_MS) {
      last.to = t
      last.campaigns.add(campaign)
    } else {
      ranges.push({ from: t, to: t, campaigns: new Set([campaign]) })
    }
  }
  if (ranges.length <= maxRanges) return ranges
  // Close the (length - max) smallest gaps: gap i lies between ranges i and i + 1.
  const gaps = ranges.slice(1).map((r, i) => ({ i, size: r.from - (ranges[i]?.to ?? r.from) }))
  const closed = new Set(gaps.sort((a, b) => a.size - b.size || a.i - b.i).slice(0, ranges.length - maxRanges).map((g) => g.i))
  const joined: LookupRange[] = []
  ranges.forEach((r, i) => {
    const last = joined[joined.length - 1]
    if (last && closed.has(i - 1)) {
      last.to = r.to
      for (const c of r.campaigns) last.campaigns.add(c)
    } else {
      joined.push({ from: r.from, to: r.to, campaigns: new Set(r.campaigns) })
    }
  })
  return joined
}

/** `SELECT click_id` of the clicks stored in the block's key ranges. Exported for tests. */
export function storedClicksQuery(database: string, rows: readonly ClickRow[]): string {
  const ranges = lookupRanges(rows).map(
    (r) => `(campaign_id IN (${[...r.campaigns].sort().map(quote).join(',')}) AND ts BETWEEN ${utcMillis(r.from)} AND ${utcMillis(r.to)})`,
  )
  return `SELECT click_id FROM ${database}.clicks WHERE ${ranges.join(' OR ')}`
}

function utcMillis(ms: number): string {
  return `fromUnixTimestamp64Milli(toInt64(${Math.trunc(ms)}), 'UTC')`
}

/** A ClickHouse string literal: backslash and quote escaped, control bytes as \xHH. */
export function quote(value: string): string {
  const escaped = value
    .replace(/[\\']/g, (c) => `\\${c}`)
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
  return `'${escaped}'`
}
