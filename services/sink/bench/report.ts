/**
 * A month's campaign_report over 10 million clicks: today's report (per-day counters in a
 * projection of `clicks`, migration 0004) next to the uniqExact sets of click IDs it replaced
 * (migration 0002), measured on the same clicks in the same run.
 *
 *   node --import tsx services/sink/bench/report.ts
 *   BENCH_CLICKS=2000000 node --import tsx services/sink/bench/report.ts
 *
 * Uses CLICKHOUSE_URL, else embedded chDB in a temp dir. The clicks are generated inside
 * ClickHouse (INSERT … SELECT FROM numbers()), spread over October 2026, 20 campaigns with 10
 * publishers each, 2 % bots and 1 % duplicate-flagged.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { clickHouseTarget, createClickHouse } from '@clickjoin/clickhouse'
import { writeBenchResult } from '@clickjoin/local-stack/bench'
import { CLICKS_REPORT_PROJECTION, migrateSchema } from '../src/migrations/index.ts'

const clicksWanted = Number(process.env['BENCH_CLICKS'] ?? 10_000_000)
const runs = 3
const dataDir = await mkdtemp(path.join(tmpdir(), 'report-bench-'))
const target = clickHouseTarget(process.env['CLICKHOUSE_URL'], path.join(dataDir, 'clickhouse'))
const client = createClickHouse(target)
const db = `bench_report_${Date.now().toString(36)}`
const monthStart = Date.UTC(2026, 9, 1)
const monthMs = Date.UTC(2026, 10, 1) - monthStart

async function scalar(query: string): Promise<string> {
  const rs = await client.query({ query, format: 'TabSeparated' })
  return (await rs.text()).trim()
}

async function timed(what: string, statement: string): Promise<number> {
  const started = performance.now()
  await client.command({ query: statement, clickhouse_settings: { insert_deduplication_token: '' } })
  const ms = performance.now() - started
  console.log(`${what}: ${(ms / 1000).toFixed(1)} s`)
  return ms
}

try {
  await migrateSchema(client, { database: db, retentionDays: { clicks: 0, postbacks: 0, conversions: 0 }, log: { info: () => undefined } })

  // 1. The clicks, with the projection filled as the sink's inserts fill it.
  await timed(
    `insert ${clicksWanted.toLocaleString('en-US')} clicks`,
    `INSERT INTO ${db}.clicks (click_id, ts, campaign_id, publisher_id, sub1, user_agent, destination, is_bot, is_duplicate, window_seconds, max_window_seconds)
     SELECT
       lower(hex(sipHash128(number))) AS click_id,
       fromUnixTimestamp64Milli(toInt64(${monthStart} + intDiv(number * ${monthMs}, ${clicksWanted})), 'UTC') AS ts,
       concat('campaign-', toString(number % 20)) AS campaign_id,
       concat('pub-', toString(number % 20), '-', toString(cityHash64(number) % 10)) AS publisher_id,
       concat('s-', toString(number % 1000)) AS sub1,
       'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36' AS user_agent,
       'https://shop.example/land' AS destination,
       cityHash64(number, 1) % 50 = 0 AS is_bot,
       cityHash64(number, 2) % 100 = 0 AS is_duplicate,
       2592000, 2592000
     FROM numbers(${clicksWanted})`,
  )

  // 2. The replaced design on the same clicks: what its materialized view would have stored.
  await client.command({
    query: `CREATE TABLE ${db}.clicks_daily_uniq (
      day Date,
      campaign_id LowCardinality(String),
      publisher_id LowCardinality(String),
      clicks AggregateFunction(uniqExact, String),
      unique_clicks AggregateFunction(uniqExact, String)
    ) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(day) ORDER BY (campaign_id, day, publisher_id)`,
  })
  await timed(
    'fill the uniqExact states (the old view, for comparison)',
    `INSERT INTO ${db}.clicks_daily_uniq
     SELECT toDate(ts, 'UTC') AS day, campaign_id, publisher_id,
            uniqExactState(click_id), uniqExactStateIf(click_id, is_bot = 0 AND is_duplicate = 0)
     FROM ${db}.clicks GROUP BY day, campaign_id, publisher_id`,
  )
  const viewSql = await scalar(`SELECT create_table_query FROM system.tables WHERE database = '${db}' AND name = 'campaign_report'`)
  // The old view: the same conversions side, click counts merged from the sets.
  await client.command({
    query: `CREATE VIEW ${db}.campaign_report_uniq AS
    WITH
      click_totals AS (
        SELECT day, campaign_id, publisher_id, uniqExactMerge(clicks) AS clicks, uniqExactMerge(unique_clicks) AS unique_clicks
        FROM ${db}.clicks_daily_uniq GROUP BY day, campaign_id, publisher_id
      ),
      conversion_totals AS (
        SELECT toDate(conversion_ts, 'UTC') AS day, campaign_id, publisher_id, count() AS conversions, sum(revenue) AS revenue, sum(payout) AS payout
        FROM ${db}.conversions FINAL WHERE outcome = 'attributed' AND status = 'approved' GROUP BY day, campaign_id, publisher_id
      )
    SELECT day, campaign_id, publisher_id, clicks, unique_clicks, conversions, revenue, payout,
      if(unique_clicks = 0, 0, conversions / unique_clicks) AS cr,
      if(unique_clicks = 0, toDecimal128(0, 6), payout / unique_clicks) AS epc
    FROM click_totals FULL OUTER JOIN conversion_totals USING (day, campaign_id, publisher_id)`,
  })
  if (!viewSql.includes('countIf')) throw new Error('campaign_report is not the counters view of migration 0004')

  // Both settled into one part per month, as a month-old partition is.
  await timed('merge both (OPTIMIZE FINAL)', `OPTIMIZE TABLE ${db}.clicks FINAL`)
  await client.command({ query: `OPTIMIZE TABLE ${db}.clicks_daily_uniq FINAL` })

  // 3. A month's report, per campaign and publisher, as a dashboard asks for it.
  const monthQuery = (view: string) =>
    `SELECT campaign_id, publisher_id, sum(clicks) AS clicks, sum(unique_clicks) AS unique_clicks,
            sum(conversions) AS conversions, sum(payout) AS payout
     FROM ${db}.${view} WHERE day >= '2026-10-01' AND day < '2026-11-01'
     GROUP BY campaign_id, publisher_id ORDER BY campaign_id, publisher_id`
  async function runReport(view: string): Promise<{ ms: number; rows: Array<{ clicks: string; unique_clicks: string }> }> {
    const started = performance.now()
    const rs = await client.query({ query: monthQuery(view), format: 'JSONEachRow' })
    const rows = await rs.json<{ clicks: string; unique_clicks: string }>()
    return { ms: performance.now() - started, rows }
  }
  const plan = await client.query({ query: `EXPLAIN ${monthQuery('campaign_report')}`, format: 'TabSeparated' })
  if (!(await plan.text()).includes(`ReadFromMergeTree (${CLICKS_REPORT_PROJECTION})`)) {
    throw new Error(`the month's report does not read the ${CLICKS_REPORT_PROJECTION} projection`)
  }
  const counters: number[] = []
  const sets: number[] = []
  let answers: string[] = []
  for (let i = 0; i < runs; i++) {
    // Interleaved, so both see the same machine load.
    const a = await runReport('campaign_report')
    const b = await runReport('campaign_report_uniq')
    counters.push(a.ms)
    sets.push(b.ms)
    answers = [JSON.stringify(a.rows), JSON.stringify(b.rows)]
  }
  if (answers[0] !== answers[1]) throw new Error('the two reports differ: the counters are not exact')
  const totals = JSON.parse(answers[0] ?? '[]') as Array<{ clicks: string; unique_clicks: string }>
  const totalClicks = totals.reduce((n, r) => n + Number(r.clicks), 0)
  const totalUnique = totals.reduce((n, r) => n + Number(r.unique_clicks), 0)
  if (totalClicks !== clicksWanted) throw new Error(`report counts ${totalClicks} clicks, ${clicksWanted} inserted`)

  const projectionBytes = Number(
    await scalar(`SELECT sum(bytes_on_disk) FROM system.projection_parts WHERE database = '${db}' AND table = 'clicks' AND active`),
  )
  const setBytes = Number(await scalar(`SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '${db}' AND table = 'clicks_daily_uniq' AND active`))

  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN
  const fmt = (xs: number[]) => `${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`
  console.log(
    [
      ``,
      `${clicksWanted.toLocaleString('en-US')} clicks over October 2026, ${totals.length} campaign × publisher rows, ClickHouse ${target.kind} ${await scalar('SELECT version()')}`,
      `a month's campaign_report, median of ${runs}:`,
      `  counters (projection of clicks, migration 0004):  ${fmt(counters)}`,
      `  uniqExact sets of click IDs (migration 0002):     ${fmt(sets)}`,
      `  both: ${totalClicks.toLocaleString('en-US')} clicks, ${totalUnique.toLocaleString('en-US')} unique clicks, row for row equal`,
      `on disk: counters ${(projectionBytes / 1024).toFixed(0)} KiB, sets ${(setBytes / 2 ** 20).toFixed(1)} MiB`,
    ].join('\n'),
  )
  await writeBenchResult('report', [
    {
      measure: `a month's campaign_report over ${clicksWanted.toLocaleString('en-US')} clicks (median of ${runs})`,
      value: Math.round(median(counters) * 10) / 10,
      unit: 'ms',
      reference: { label: 'uniqExact sets of click IDs (the replaced view)', value: Math.round(median(sets) * 10) / 10 },
      detail: `counters ${fmt(counters)}; sets ${fmt(sets)}`,
    },
  ])
} finally {
  await client.command({ query: `DROP DATABASE IF EXISTS ${db}` }).catch(() => undefined)
  await client.close()
  await rm(dataDir, { recursive: true, force: true })
}
