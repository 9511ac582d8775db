import { describe, expect, it } from 'vitest'
import type { ClickV1 } from '@clickjoin/contracts'
import { keySlot, SLOT_COUNT } from '@clickjoin/redis'
import { attributorKeys, clickLocation, KEY_SHARDS, SHARD_TAGS, shardOf, clickTtlSeconds, decodeClickState, encodeClickState, parseParked, formatParked, parsePostbackRecord } from './redis-state.ts'

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
    const tag = SHARD_TAGS[id[7]! % KEY_SHARDS]!
    expect(key).toEqual(Buffer.concat([Buffer.from(`cj:h${tag}`), bucket]))
    expect(field).toEqual(id.subarray(8, 17))
    expect(clickLocation('cj:', 'short-id')).toEqual({ key: `cj:K:${SHARD_TAGS[shardOf('short-id')]}short-id`, field: 'c' })
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

describe('Redis Cluster key layout', () => {
  const keys = attributorKeys('cj:')
  const slotOf = (key: string | Buffer) => keySlot(key)

  it('spreads the shard tags evenly over the slot space, one slot each', () => {
    const slots = SHARD_TAGS.map((tag) => keySlot(tag.slice(1, -1)))
    expect(new Set(slots).size).toBe(KEY_SHARDS)
    slots.forEach((slot, shard) => expect(Math.floor(slot / (SLOT_COUNT / KEY_SHARDS))).toBe(shard))
  })

  it('puts every key a click-side script touches in its click shard, binary bucket bytes included', () => {
    for (let i = 0; i < 200; i++) {
      const id = Buffer.from(click.click_id, 'base64url')
      id[7] = i // the byte that picks the shard; '{' and '}' (0x7b, 0x7d) among them
      id[3] = (i * 7) & 0xff
      const clickId = id.toString('base64url')
      const shard = shardOf(clickId)
      const slot = slotOf(keys.due(shard))
      expect(slotOf(clickLocation('cj:', clickId).key)).toBe(slot)
      expect(slotOf(keys.parked(clickId))).toBe(slot)
    }
  })

  it('puts a conversion, its postback records, parked index and outbox in one slot; without a txn_id, the slot of its click', () => {
    for (const partitionKey of ['t:acme:order-{1}', 't:partner-7:txn-42', click.click_id, 'not-a-click-id']) {
      const slot = slotOf(keys.outboxOf(partitionKey))
      expect(slotOf(keys.conversion(partitionKey, 'e:conversion:x'))).toBe(slot)
      expect(slotOf(keys.postback(partitionKey, 'pb-{9}'))).toBe(slot)
      expect(slotOf(keys.parkedConversion(partitionKey))).toBe(slot)
    }
    expect(slotOf(keys.conversion(click.click_id, 'e:conversion:x'))).toBe(slotOf(clickLocation('cj:', click.click_id).key))
  })

  it('refuses a key prefix with braces, which would take over the hash tag', () => {
    expect(() => attributorKeys('cj{x}:')).toThrow(/REDIS_KEY_PREFIX/)
  })
})
