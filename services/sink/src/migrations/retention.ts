import type { ClickHouseClient } from '@clickjoin/clickhouse'

export interface RetentionDays {
  clicks: number
  postbacks: number
  conversions: number
  /** Unset: kept forever. */
  dead_letters?: number
}

/** The time column each table's rows expire by. */
const TTL_COLUMNS: Record<string, string> = {
  clicks: 'ts',
  click_lookup: 'created_at',
  postbacks: 'received_at',
  conversions: 'conversion_ts',
  dead_letters: 'received_at',
}

/**
 * Retention is configuration, not schema: applied on every start so changing
 * `*_TTL_DAYS` and restarting takes effect. Only the table metadata changes (old parts are
 * cleaned by merges, not by a mutation at start). 0 days = keep forever.
 */
export async function applyRetention(client: ClickHouseClient, database: string, days: RetentionDays): Promise<void> {
  const wanted: Record<string, number> = { ...days, click_lookup: days.clicks }
  const rs = await client.query({
    query: `SELECT name, engine_full FROM system.tables WHERE database = {db:String} AND name IN ({names:Array(String)})`,
    query_params: { db: database, names: Object.keys(TTL_COLUMNS) },
    format: 'JSONEachRow',
  })
  const engines = new Map((await rs.json<{ name: string; engine_full: string }>()).map((t) => [t.name, t.engine_full]))
  for (const [table, column] of Object.entries(TTL_COLUMNS)) {
    const engine = engines.get(table)
    const n = wanted[table] ?? 0
    if (engine === undefined) continue
    const expression = `TTL toDateTime(${column}) + toIntervalDay(${n})`
    if (n > 0 && !engine.includes(expression)) {
      await client.command({
        query: `ALTER TABLE ${database}.${table} MODIFY TTL toDateTime(${column}) + toIntervalDay(${n})`,
        clickhouse_settings: { materialize_ttl_after_modify: 0 },
      })
    } else if (n === 0 && / TTL /.test(engine)) {
      await client.command({ query: `ALTER TABLE ${database}.${table} REMOVE TTL` })
    }
  }
}
