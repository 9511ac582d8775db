import { describe, expect, it } from 'vitest'
import { lookupRanges, quote, storedClicksQuery, type ClickRow } from './click-dedup.ts'

const row = (click_id: string, campaign_id: string, ts: number) => ({ click_id, campaign_id, ts: new Date(ts).toISOString() }) as ClickRow
const t0 = Date.UTC(2026, 9, 5, 12)

describe('lookupRanges', () => {
  it('joins clicks at most a minute apart into one time range with its campaigns', () => {
    const ranges = lookupRanges([
      row('a', 'c1', t0 + 30_000),
      row('b', 'c2', t0),
      row('c', 'c1', t0 + 90_000),
      row('d', 'c3', t0 - 86_400_000), // an S2S click of yesterday
    ])
    expect(ranges).toEqual([
      { from: t0 - 86_400_000, to: t0 - 86_400_000, campaigns: new Set(['c3']) },
      { from: t0, to: t0 + 90_000, campaigns: new Set(['c2', 'c1']) },
    ])
  })

  it('closes the smallest gaps first when there are more ranges than allowed', () => {
    const hour = 3_600_000
    const rows = [0, 2, 3, 10, 11, 30].map((h, i) => row(`r${i}`, `c${i}`, t0 + h * hour))
    const ranges = lookupRanges(rows, 3)
    expect(ranges.map((r) => [(r.from - t0) / hour, (r.to - t0) / hour, [...r.campaigns]])).toEqual([
      [0, 3, ['c0', 'c1', 'c2']],
      [10, 11, ['c3', 'c4']],
      [30, 30, ['c5']],
    ])
  })
})

describe('storedClicksQuery', () => {
  it('reads the clicks of the ranges by primary key prefix (campaign, time)', () => {
    const ms = (t: number) => `fromUnixTimestamp64Milli(toInt64(${t}), 'UTC')`
    expect(storedClicksQuery('db', [row('a', "o'c", t0), row('b', 'c1', t0 + 1)])).toBe(
      `SELECT click_id FROM db.clicks WHERE (campaign_id IN ('c1','o\\'c') AND ts BETWEEN ${ms(t0)} AND ${ms(t0 + 1)})`,
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
