import { describe, expect, it } from 'vitest'
import { quote, storedClicksQuery, type ClickRow } from './click-dedup.ts'

const row = (click_id: string, campaign_id: string, ts: string) => ({ click_id, campaign_id, ts }) as ClickRow

describe('storedClicksQuery', () => {
  it('looks clicks up by (campaign, time range) key ranges, splitting a campaign where clicks are more than a minute apart', () => {
    const sql = storedClicksQuery('db', [
      row('a', 'c1', '2026-10-05T12:00:00.000Z'),
      row('b', 'c2', '2026-10-05T12:00:10.000Z'),
      row('c', 'c1', '2026-10-05T12:00:59.500Z'),
      row('d', 'c1', '2026-09-01T00:00:00.000Z'),
    ])
    const ms = (iso: string) => `fromUnixTimestamp64Milli(toInt64(${Date.parse(iso)}), 'UTC')`
    expect(sql).toBe(
      'SELECT click_id FROM db.clicks WHERE (' +
        [
          `(campaign_id = 'c1' AND ts BETWEEN ${ms('2026-09-01T00:00:00.000Z')} AND ${ms('2026-09-01T00:00:00.000Z')})`,
          `(campaign_id = 'c1' AND ts BETWEEN ${ms('2026-10-05T12:00:00.000Z')} AND ${ms('2026-10-05T12:00:59.500Z')})`,
          `(campaign_id = 'c2' AND ts BETWEEN ${ms('2026-10-05T12:00:10.000Z')} AND ${ms('2026-10-05T12:00:10.000Z')})`,
        ].join(' OR ') +
        ") AND click_id IN ('a','b','c','d')",
    )
  })
})

describe('quote', () => {
  it('escapes what would end or bend a ClickHouse string literal', () => {
    expect(quote(`it's`)).toBe(`'it\\'s'`)
    expect(quote('a\\b')).toBe(`'a\\\\b'`)
    expect(quote('x\ny\0')).toBe(`'x\\x0ay\\x00'`)
    expect(quote('ü–日本')).toBe(`'ü–日本'`)
  })
})
