import type { ClickHouseClient } from '@clickjoin/clickhouse'
import type { clickRow } from './rows.ts'

export type ClickRow = ReturnType<typeof clickRow>

/** Clicks of one campaign closer in time than this are looked up as one key range. */
const RANGE_GAP_MS = 60_000

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
 * The lookup reads by primary key: `clicks` is ordered by (campaign_id, ts, click_id), and the
 * block's clicks become a few (campaign, time range) pairs plus the set of their IDs.
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
  const query = storedClicksQuery(database, firstCopies)
  const rs = await client.query({
    query,
    format: 'JSONCompactEachRow',
    // An IN list of a whole block is larger than the default 256 KiB limit on query text.
    clickhouse_settings: { max_query_size: String(Math.max(262_144, query.length * 2)) },
  })
  const stored = new Set((await rs.json<[string]>()).map(([id]) => id))
  return stored.size === 0 ? firstCopies : firstCopies.filter((row) => !stored.has(row.click_id))
}

/** `SELECT click_id` of the given clicks that are stored, by key ranges. Exported for tests. */
export function storedClicksQuery(database: string, rows: readonly ClickRow[]): string {
  const byCampaign = new Map<string, number[]>()
  for (const row of rows) {
    const times = byCampaign.get(row.campaign_id) ?? []
    times.push(Date.parse(row.ts))
    byCampaign.set(row.campaign_id, times)
  }
  const ranges: string[] = []
  for (const [campaign, times] of byCampaign) {
    times.sort((a, b) => a - b)
    let from = times[0] ?? 0
    let to = from
    const flush = () =>
      ranges.push(`(campaign_id = ${quote(campaign)} AND ts BETWEEN ${utcMillis(from)} AND ${utcMillis(to)})`)
    for (const t of times) {
      if (t - to > RANGE_GAP_MS) {
        flush()
        from = t
      }
      to = t
    }
    flush()
  }
  const ids = rows.map((r) => quote(r.click_id)).join(',')
  return `SELECT click_id FROM ${database}.clicks WHERE (${ranges.join(' OR ')}) AND click_id IN (${ids})`
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
