import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { clickHouseTarget, createClickHouse, insertRows, type ClickHouseClient } from './index.ts'

describe('ClickHouse through @clickhouse/client (embedded chDB unless CLICKHOUSE_URL is set)', () => {
  let client: ClickHouseClient
  const db = uniqueName('cj_test')

  beforeAll(async () => {
    client = createClickHouse(clickHouseTarget(testStackEnv().clickhouseUrl, await tempDir('chdb')))
    await client.command({ query: `CREATE DATABASE ${db}` })
  })
  afterAll(async () => {
    await client.command({ query: `DROP DATABASE IF EXISTS ${db}` })
    await client.close()
  })

  it('creates a table with LowCardinality and DateTime64 columns and reads rows back with a query parameter', async () => {
    await client.command({
      query: `CREATE TABLE ${db}.clicks_probe (
        click_id String,
        ts DateTime64(3, 'UTC'),
        campaign_id LowCardinality(String),
        revenue Decimal(18, 6)
      ) ENGINE = MergeTree ORDER BY (campaign_id, ts)`,
    })
    await insertRows(client, {
      table: `${db}.clicks_probe`,
      rows: [
        { click_id: 'a', ts: '2026-11-23 10:00:00.123', campaign_id: 'summer', revenue: '12.345678' },
        { click_id: 'b', ts: '2026-11-23 10:00:01.500', campaign_id: 'winter', revenue: '0' },
      ],
    })
    const rs = await client.query({
      query: `SELECT toTypeName(campaign_id) AS campaign_type, toTypeName(ts) AS ts_type,
                     click_id, toString(ts) AS ts_text, campaign_id, toString(revenue) AS revenue_text
              FROM ${db}.clicks_probe WHERE campaign_id = {campaign:String}`,
      query_params: { campaign: 'summer' },
      format: 'JSONEachRow',
    })
    expect(await rs.json()).toEqual([
      {
        click_id: 'a',
        ts_text: '2026-11-23 10:00:00.123',
        campaign_id: 'summer',
        revenue_text: '12.345678',
        campaign_type: 'LowCardinality(String)',
        ts_type: "DateTime64(3, 'UTC')",
      },
    ])
  })

  it('deduplicates a replayed insert by token, and a later insert without a token is not mistaken for it', async () => {
    const table = `${db}.dedup_probe`
    await client.command({
      query: `CREATE TABLE ${table} (id UInt32) ENGINE = MergeTree ORDER BY id
              SETTINGS non_replicated_deduplication_window = 100`,
    })
    await insertRows(client, { table, rows: [{ id: 1 }, { id: 2 }], deduplicationToken: 'tok-1' })
    await insertRows(client, { table, rows: [{ id: 1 }, { id: 2 }], deduplicationToken: 'tok-1' }) // replay
    await insertRows(client, { table, rows: [{ id: 3 }] }) // no token: must land
    const rs = await client.query({ query: `SELECT id FROM ${table} ORDER BY id`, format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }])
  })
})
