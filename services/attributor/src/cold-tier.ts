import { createClient, type ClickHouseClient } from '@clickhouse/client'
import { createLookupCoalescer } from './lookup-coalescer.ts'
import { fromMicros, toMicros, type ClickState, type ConversionSoFar } from './rules.ts'

/**
 * Clicks and decided conversions older than the hot period, read from ClickHouse (the sink's
 * tables). A lookup asks for a whole round's IDs at once, and the conversion lookups of
 * concurrent rounds share queries (see `conversions`); an error (ClickHouse unreachable, a
 * timeout) is thrown to every caller the query served, which retries its whole batch without
 * committing its offsets: a click that is merely unreachable must never be taken for one that
 * does not exist.
 */
/**
 * An HTTP client for the cold tier: a ClickHouse server (credentials in the URL) or the sink's
 * read-only SQL endpoint. No keep-alive: the sink's endpoint may close an idle socket just as
 * the client reuses it, and a lookup is one request per batch, where a fresh connection on the
 * same host costs far less than a failed batch retried.
 */
export function createColdTierClient(url: string): ClickHouseClient {
  const parsed = new URL(url)
  return createClient({
    url: `${parsed.protocol}//${parsed.host}${parsed.pathname}`,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    keep_alive: { enabled: false },
    request_timeout: 30_000,
  })
}

export interface ColdTier {
  /** The clicks found, by click ID. `createdAtMs` is the time each click ID carries. */
  clicks(wanted: readonly { clickId: string; createdAtMs: number }[]): Promise<Map<string, ClickState>>
  /**
   * The latest version of each conversion found, by conversion ID. Concurrent calls share
   * queries (`createLookupCoalescer`): a call waits for the query in flight, then goes out with
   * the others that waited, so the answer is never older than the call.
   */
  conversions(conversionIds: readonly string[]): Promise<Map<string, ConversionSoFar>>
  /** Which of these click IDs ClickHouse has (the sink-lag probe). */
  has(clickIds: readonly { clickId: string; createdAtMs: number }[]): Promise<Set<string>>
  ping(): Promise<void>
}

interface ClickRow {
  click_id: string
  ts: string
  campaign_id: string
  publisher_id: string
  sub1: string
  sub2: string
  sub3: string
  sub4: string
  sub5: string
  window_seconds: number
}

type ConversionRow = Record<
  | 'conversion_id'
  | 'postback_id'
  | 'click_id'
  | 'partner_id'
  | 'event'
  | 'txn_id'
  | 'status'
  | 'outcome'
  | 'reason'
  | 'campaign_id'
  | 'publisher_id'
  | 'sub1'
  | 'sub2'
  | 'sub3'
  | 'sub4'
  | 'sub5'
  | 'revenue'
  | 'payout'
  | 'currency'
  | 'version'
  | 'click_ts'
  | 'conversion_ts'
  | 'ctit_ms'
  | 'updated_at',
  string
> & { is_fast: number }

/**
 * A ClickHouse string literal. IDs go into the query text (the request body), not into URL
 * parameters: a batch's worth of IDs would exceed an HTTP server's URL/header limit.
 */
export function sqlString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
}

const sqlList = (items: readonly string[]) => `[${items.map(sqlString).join(',')}]`

/** Money as the contracts write it ("2.5", "0"), whatever scale ClickHouse prints. */
const money = (text: string) => fromMicros(toMicros(text.includes('.') ? text.replace(/\.?0+$/, '') || '0' : text))

/** The SQL queries the cold tier sends, for `ColdTierOptions.onQuery`. */
export type ColdTierQuery = 'clicks' | 'clicks_exist' | 'conversions_exist' | 'conversions_final'

export interface ColdTierOptions {
  /**
   * Conversion IDs per query at most: 1,000 (a round's worth) keeps a query within ClickHouse's
   * default `max_query_size` (256 KiB) even for IDs of the contract's longest, 128 characters,
   * each escaped character doubled (at most 259 bytes each in the IN list).
   */
  maxConversionIdsPerQuery?: number
  /** Told of every SQL query sent (for the attributor's count of queries, as against calls). */
  onQuery?: (query: ColdTierQuery) => void
}

export const MAX_CONVERSION_IDS_PER_QUERY = 1_000

export function createColdTier(client: ClickHouseClient, database: string, options: ColdTierOptions = {}): ColdTier {
  async function rows<T>(kind: ColdTierQuery, query: string, params: Record<string, unknown>): Promise<T[]> {
    options.onQuery?.(kind)
    const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' })
    return rs.json<T>()
  }

  async function lookupClicks(kind: 'clicks' | 'clicks_exist', wanted: readonly { clickId: string; createdAtMs: number }[], columns: string) {
    // The primary key is (created_at, click_id): the batch's time range bounds the granules read.
    const times = wanted.map((w) => w.createdAtMs)
    return rows<ClickRow>(
      kind,
      `SELECT ${columns}
       FROM ${database}.click_lookup
       WHERE created_at BETWEEN fromUnixTimestamp64Milli({from:Int64}, 'UTC') AND fromUnixTimestamp64Milli({to:Int64}, 'UTC')
         AND click_id IN ${sqlList(wanted.map((w) => w.clickId))}
       LIMIT 1 BY click_id`,
      { from: times.reduce((a, b) => Math.min(a, b)), to: times.reduce((a, b) => Math.max(a, b)) },
    )
  }

  async function lookupConversions(conversionIds: readonly string[]): Promise<Map<string, ConversionSoFar>> {
    const found = new Map<string, ConversionSoFar>()
    if (conversionIds.length === 0) return found
    // Most IDs asked for are new conversions (every txn_id one Redis does not hold is asked
    // for), so first only which exist: about 2 ms of ClickHouse against 5-6 ms for the 25
    // columns under FINAL (docs/benchmarks.md, "Attributor"). Rows are only ever added, so an
    // ID found here is there for the second query.
    // ORDER BY conversion_id: both are primary-key lookups. FINAL keeps the highest version only.
    const existing = await rows<{ conversion_id: string }>(
      'conversions_exist',
      `SELECT DISTINCT conversion_id FROM ${database}.conversions WHERE conversion_id IN ${sqlList(conversionIds)}`,
      {},
    )
    if (existing.length === 0) return found
    const stored = await rows<ConversionRow>(
      'conversions_final',
      `SELECT conversion_id, toString(version) AS version, postback_id, click_id, partner_id, event, txn_id,
              status, outcome, reason, campaign_id, publisher_id, sub1, sub2, sub3, sub4, sub5,
              toString(toUnixTimestamp64Milli(click_ts)) AS click_ts,
              toString(toUnixTimestamp64Milli(conversion_ts)) AS conversion_ts,
              toString(ctit_ms) AS ctit_ms, toString(revenue) AS revenue, toString(payout) AS payout,
              currency, is_fast, toString(toUnixTimestamp64Milli(updated_at)) AS updated_at
       FROM ${database}.conversions FINAL
       WHERE conversion_id IN ${sqlList(existing.map((row) => row.conversion_id))}`,
      {},
    )
    for (const row of stored) {
      const version = Number(row.version)
      found.set(row.conversion_id, {
        version,
        outcome: {
          v: 1,
          conversion_id: row.conversion_id,
          version,
          postback_id: row.postback_id,
          click_id: row.click_id,
          partner_id: row.partner_id,
          event: row.event,
          txn_id: row.txn_id,
          status: row.status as ConversionSoFar['outcome']['status'],
          outcome: row.outcome as ConversionSoFar['outcome']['outcome'],
          reason: row.reason as ConversionSoFar['outcome']['reason'],
          campaign_id: row.campaign_id,
          publisher_id: row.publisher_id,
          sub1: row.sub1,
          sub2: row.sub2,
          sub3: row.sub3,
          sub4: row.sub4,
          sub5: row.sub5,
          click_ts: Number(row.click_ts),
          conversion_ts: Number(row.conversion_ts),
          ctit_ms: Number(row.ctit_ms),
          revenue: money(row.revenue),
          payout: money(row.payout),
          currency: row.currency,
          is_fast: Number(row.is_fast) === 1,
          updated_at: Number(row.updated_at),
        },
      })
    }
    return found
  }

  const coalescedConversions = createLookupCoalescer(lookupConversions, options.maxConversionIdsPerQuery ?? MAX_CONVERSION_IDS_PER_QUERY)

  return {
    async clicks(wanted) {
      const found = new Map<string, ClickState>()
      if (wanted.length === 0) return found
      const columns = `click_id, toUnixTimestamp64Milli(ts) AS ts, campaign_id, publisher_id,
        sub1, sub2, sub3, sub4, sub5, window_seconds`
      for (const row of await lookupClicks('clicks', wanted, columns)) {
        found.set(row.click_id, {
          clickId: row.click_id,
          ts: Number(row.ts),
          campaignId: row.campaign_id,
          publisherId: row.publisher_id,
          subs: [row.sub1, row.sub2, row.sub3, row.sub4, row.sub5],
          windowSeconds: Number(row.window_seconds),
        })
      }
      return found
    },

    async has(wanted) {
      if (wanted.length === 0) return new Set()
      return new Set((await lookupClicks('clicks_exist', wanted, 'click_id')).map((row) => row.click_id))
    },

    conversions: (conversionIds) => coalescedConversions.lookup(conversionIds),

    async ping() {
      const result = await client.ping()
      if (!result.success) throw result.error
    },
  }
}
