import { describe, expect, it } from 'vitest'
import { insertRows, type ClickHouseClient } from '@clickjoin/clickhouse'
import { topicNames } from '@clickjoin/contracts'
import type { KafkaMessage, PartitionBatch } from '@clickjoin/kafka'
import { uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { clickRow } from '../src/rows.ts'
import { CLICKS_REPORT_PROJECTION, migrateSchema, migrations } from '../src/migrations/index.ts'
import { applyMigrations } from '../src/migrations/migration.ts'
import { click, countOf, encodeClick, produce, rows, sinkSuite } from './harness.ts'

const at = (day: number, h: number, m = 0) => Date.UTC(2026, 9, day, h, m, 0)
const quietLog = { info: () => undefined }

interface ReportRow {
  day: string
  publisher_id: string
  clicks: number
  unique_clicks: number
}

async function report(reader: ClickHouseClient, db: string, campaign: string): Promise<ReportRow[]> {
  const found = await rows<ReportRow>(
    reader,
    `SELECT toString(day) AS day, publisher_id, toUInt64(clicks) AS clicks, toUInt64(unique_clicks) AS unique_clicks
     FROM ${db}.campaign_report WHERE campaign_id = '${campaign}' ORDER BY day, publisher_id`,
  )
  return found.map((r) => ({ ...r, clicks: Number(r.clicks), unique_clicks: Number(r.unique_clicks) }))
}

describe('campaign_report: each click counted once, from counters', () => {
  const suite = sinkSuite('sink-report', {
    // Exact without merges: a background merge would collapse copies and hide a double count.
    afterStart: ({ reader, db }) => reader.command({ query: `SYSTEM STOP MERGES ${db}.clicks` }),
  })

  /** Clicks numbered `ids` of a campaign as one partition batch from the given offset on. */
  function batchOf(campaign: string, firstOffset: number, ids: number[]): PartitionBatch {
    const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
    return {
      topic: topics.clicks,
      partition: 1,
      messages: ids.map(
        (n, i) =>
          ({
            key: Buffer.from(`${campaign}-${n}`),
            value: encodeClick(
              click({
                click_id: `${campaign}-${n}`,
                campaign_id: campaign,
                // Two days, two publishers; every 10th click a bot, every 7th a duplicate-flagged click.
                ts: at(n % 2 === 0 ? 5 : 6, 12, n % 60),
                publisher_id: n % 3 === 0 ? 'pub-b' : 'pub-a',
                is_bot: n % 10 === 0,
                is_duplicate: n % 7 === 0,
              }),
            ),
            offset: String(firstOffset + i),
            timestamp: '0',
            attributes: 0,
            headers: {},
          }) as KafkaMessage,
      ),
      heartbeat: async () => undefined,
      isActive: () => true,
    }
  }

  /** The report rows computed by hand for clicks numbered 0..n-1 (see batchOf). */
  function expected(n: number): ReportRow[] {
    const cells = new Map<string, ReportRow>()
    for (let i = 0; i < n; i++) {
      const day = i % 2 === 0 ? '2026-10-05' : '2026-10-06'
      const pub = i % 3 === 0 ? 'pub-b' : 'pub-a'
      const cell = cells.get(`${day}/${pub}`) ?? { day, publisher_id: pub, clicks: 0, unique_clicks: 0 }
      cell.clicks++
      if (i % 10 !== 0 && i % 7 !== 0) cell.unique_clicks++
      cells.set(`${day}/${pub}`, cell)
    }
    return [...cells.values()].sort((a, b) => (a.day + a.publisher_id).localeCompare(b.day + b.publisher_id))
  }

  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)
  const storedRows = (campaign: string) => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks WHERE campaign_id = '${campaign}'`)

  it('a redelivered batch (the same rows and offsets again) counts once', async () => {
    await suite.sink.storePartitionBatch(batchOf('redeliver', 5_000, range(0, 300)))
    await suite.sink.storePartitionBatch(batchOf('redeliver', 5_000, range(0, 300)))
    expect(await report(suite.reader, suite.db, 'redeliver')).toEqual(expected(300))
    expect(await storedRows('redeliver')).toBe(300)
  })

  it('a click stored again without the token (a replay with other offsets, a copy inside a batch) counts once', async () => {
    await suite.sink.storePartitionBatch(batchOf('replay', 7_000, range(0, 200)))
    // After a crash the consumer fetched a longer range from the same start: another token.
    await suite.sink.storePartitionBatch(batchOf('replay', 7_000, range(0, 350)))
    // The same clicks again under new offsets, some twice in the same batch.
    await suite.sink.storePartitionBatch(batchOf('replay', 9_000, [...range(100, 400), ...range(380, 400)]))
    expect(await report(suite.reader, suite.db, 'replay')).toEqual(expected(400))
    // No FINAL and no merge needed: no row was stored twice.
    expect(await storedRows('replay')).toBe(400)
  })

  it('a click written twice to Kafka (two offsets, maybe two fetches) counts once through the consumer', async () => {
    const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
    const messages = range(0, 500).map((n) => {
      const c = click({ click_id: `kafka-${n}`, campaign_id: 'kafka', ts: at(7, 9, n % 60) })
      return { topic: topics.clicks, key: c.click_id, value: encodeClick(c) }
    })
    await produce(suite.kafka, messages)
    await waitFor(() => storedRows('kafka'), (n) => n === 500, 30_000, '500 clicks stored')
    await produce(suite.kafka, [...messages.slice(0, 100), ...messages.slice(0, 100)])
    // A marker produced after the copies, on every partition the copies went to: once it is
    // stored, the copies have been consumed.
    const markers = messages.slice(0, 100).map((m, i) => ({ ...m, value: encodeClick(click({ click_id: `marker-${i}`, campaign_id: 'kafka-marker', ts: at(7, 10) })) }))
    await produce(suite.kafka, markers)
    await waitFor(() => storedRows('kafka-marker'), (n) => n === 100, 30_000, 'the markers stored after the copies')
    expect(await report(suite.reader, suite.db, 'kafka')).toEqual([{ day: '2026-10-07', publisher_id: 'pub-1', clicks: 500, unique_clicks: 500 }])
    expect(await storedRows('kafka')).toBe(500)
  })

  it('reads its click counts from the projection, not from the rows', async () => {
    const plan = await rows<{ explain: string }>(
      suite.reader,
      `EXPLAIN SELECT * FROM ${suite.db}.campaign_report WHERE day >= '2026-10-01' AND day < '2026-11-01'`,
    )
    expect(plan.map((r) => r.explain).join('\n')).toMatch(new RegExp(`ReadFromMergeTree \\(${CLICKS_REPORT_PROJECTION}\\)`))
    const partsWithout = await countOf(
      suite.reader,
      `SELECT count() AS n FROM system.parts p
       WHERE p.database = '${suite.db}' AND p.table = 'clicks' AND p.active
         AND p.name NOT IN (SELECT parent_name FROM system.projection_parts
                            WHERE database = '${suite.db}' AND table = 'clicks' AND name = '${CLICKS_REPORT_PROJECTION}' AND active)`,
    )
    expect(partsWithout).toBe(0)
  })

  it('migrates a database from the uniqExact report: existing clicks counted once, the sets of IDs dropped', async () => {
    const old = uniqueName('cj_old')
    await applyMigrations(suite.reader, old, migrations.filter((m) => m.version <= 2), quietLog)
    const clicks = range(0, 120).map((n) =>
      clickRow(click({ click_id: `old-${n}`, campaign_id: 'old', ts: at(n % 2 === 0 ? 5 : 6, 8, n % 60), publisher_id: n % 3 === 0 ? 'pub-b' : 'pub-a', is_bot: n % 10 === 0, is_duplicate: n % 7 === 0 })),
    )
    await insertRows(suite.reader, { table: `${old}.clicks`, rows: clicks })
    // Copies stored before the sink filtered them: a replay without token, in separate inserts.
    await insertRows(suite.reader, { table: `${old}.clicks`, rows: clicks.slice(0, 40) })
    await insertRows(suite.reader, { table: `${old}.clicks`, rows: clicks.slice(30, 50) })
    expect(await countOf(suite.reader, `SELECT count() AS n FROM ${old}.clicks`)).toBe(180)

    const ran = await migrateSchema(suite.reader, { database: old, retentionDays: { clicks: 0, postbacks: 0, conversions: 0 }, log: quietLog })
    expect(ran).toContain(4)
    const byHand = expected(120)
    expect(await report(suite.reader, old, 'old')).toEqual(byHand)
    expect(await countOf(suite.reader, `SELECT count() AS n FROM ${old}.clicks`)).toBe(120)
    const tables = await rows<{ name: string }>(suite.reader, `SELECT name FROM system.tables WHERE database = '${old}' ORDER BY name`)
    expect(tables.map((t) => t.name)).not.toContain('clicks_daily')
    expect(tables.map((t) => t.name)).not.toContain('clicks_daily_mv')
    expect(tables.map((t) => t.name)).toContain('campaign_report')

    // Re-running the migration (a crash before it was recorded) changes nothing.
    for (const statement of migrations.find((m) => m.version === 4)!.statements(old)) {
      await suite.reader.command({ query: statement, clickhouse_settings: { insert_deduplication_token: '' } })
    }
    expect(await report(suite.reader, old, 'old')).toEqual(byHand)
  })
})
