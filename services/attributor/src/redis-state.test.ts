import { describe, expect, it } from 'vitest'
import type { ClickV1 } from '@clickjoin/contracts'
import { clickLocation, clickTtlSeconds, decodeClickState, encodeClickState, parseParked, formatParked, parsePostbackRecord } from './redis-state.ts'

const createdAt = 1_700_000_000_000
const click: ClickV1 = {
  v: 1,
  click_id: 'AQGMxUo1gAB3c2VjcmV0cmFuZG9tbWFx',
  ts: createdAt,
  campaign_id: 'demo',
  publisher_id: 'pub-42',
  sub1: '',
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: '',
  source: 'search',
  creative: '',
  user_key: '',
  ip: '203.0.113.0',
  user_agent: 'Mozilla/5.0',
  referer: '',
  destination: 'https://shop.example/',
  is_bot: false,
  is_duplicate: false,
  window_seconds: 2_592_000,
  max_window_seconds: 7_776_000,
}

describe('compact click state', () => {
  it('keeps only what the join needs, the time relative to the click ID', () => {
    const encoded = encodeClickState(click, createdAt)
    expect(encoded).toBe('\x1f1jk00\x1fdemo\x1fpub-42')
    expect(decodeClickState(click.click_id, encoded, createdAt)).toEqual({
      clickId: click.click_id,
      ts: createdAt,
      windowSeconds: 2_592_000,
      campaignId: 'demo',
      publisherId: 'pub-42',
      subs: ['', '', '', '', ''],
    })
  })

  it('round-trips S2S times before the ID, sub IDs, separators in free text and unknown ID times', () => {
    const variants: [ClickV1, number | undefined][] = [
      [{ ...click, ts: createdAt - 86_400_000, sub3: 'x' }, createdAt],
      [{ ...click, sub1: 'gclid-1', sub5: 'ü–日本' }, createdAt],
      [{ ...click, sub2: 'a\x1fb', publisher_id: '[' }, createdAt],
      [{ ...click, ts: 123 }, undefined],
    ]
    for (const [c, at] of variants) {
      const state = decodeClickState(c.click_id, encodeClickState(c, at), at)
      expect(state).toEqual({
        clickId: c.click_id,
        ts: c.ts,
        windowSeconds: c.window_seconds,
        campaignId: c.campaign_id,
        publisherId: c.publisher_id,
        subs: [c.sub1, c.sub2, c.sub3, c.sub4, c.sub5],
      })
    }
  })

  it('puts a click in the bucket of its ID time and first random byte, other IDs under their text', () => {
    const { key, field } = clickLocation('cj:', click.click_id)
    const id = Buffer.from(click.click_id, 'base64url')
    const bucket = Buffer.alloc(5)
    bucket.writeUInt32BE(Math.floor(id.readUIntBE(1, 6) / 10_000))
    bucket[4] = id[7]!
    expect(key).toEqual(Buffer.concat([Buffer.from('cj:h'), bucket]))
    expect(field).toEqual(id.subarray(8, 17))
    expect(clickLocation('cj:', 'short-id')).toEqual({ key: 'cj:K:short-id', field: 'c' })
  })

  it('keeps a click bucket for the hot period plus the margin, whatever the windows', () => {
    expect(clickTtlSeconds(172_800, 3_600)).toBe(176_400)
    expect(clickTtlSeconds(0, 0)).toBe(1)
  })

  it('reads back parked entries and postback records', () => {
    expect(parseParked(formatParked(5, '42', '{"a":"|"}'))).toEqual({ deadlineMs: 5, offset: '42', json: '{"a":"|"}' })
    expect(parsePostbackRecord('t:acme:T\x1f1:x\x1f3')).toEqual({ conversionId: 't:acme:T\x1f1:x', version: 3 })
  })
})
