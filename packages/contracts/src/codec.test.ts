import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { clickV1Contract, encodeClick, type ClickV1 } from './click.ts'
import { decodeEvent, encodeEvent, InvalidEventError } from './codec.ts'
import type { EventContract } from './contract.ts'
import { deadLetterFor, deadLetterMessage, deadLetterPayload, deadLetterV1Contract } from './dead-letter.ts'
import { outcomeV1Contract, type OutcomeV1 } from './outcome.ts'
import { postbackV1Contract, type PostbackV1 } from './postback.ts'

const click: ClickV1 = {
  v: 1,
  click_id: 'AQGMxUo1gAB3c2VjcmV0cmFuZG9tbWF',
  ts: 1_700_000_000_000,
  campaign_id: 'demo',
  publisher_id: 'pub-42',
  sub1: 'gclid-abc',
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: 'ü–日本',
  source: 'search',
  creative: 'banner-1',
  user_key: '',
  ip: '203.0.113.0',
  user_agent: 'Mozilla/5.0',
  referer: 'https://example.org/page',
  destination: 'https://shop.example/land?cid=AQGMxUo1gAB3c2VjcmV0cmFuZG9tbWF',
  is_bot: false,
  is_duplicate: true,
  window_seconds: 2_592_000,
  max_window_seconds: 7_776_000,
}

const postback: PostbackV1 = {
  v: 1,
  postback_id: '01J9Z7Q6W3K5M8N2P4R6T8V0X2',
  received_at: 1_700_000_100_000,
  channel: 'postback',
  partner_id: 'demo',
  click_id: 'anything-the-partner-sent',
  event: 'purchase',
  txn_id: 'T-1001',
  revenue: '19.990000',
  currency: 'EUR',
  status: 'pending',
  conversion_ts: 1_700_000_090_000,
}

const outcome: OutcomeV1 = {
  v: 1,
  conversion_id: 'demo:T-1001',
  version: 2,
  postback_id: postback.postback_id,
  click_id: click.click_id,
  partner_id: 'demo',
  event: 'purchase',
  txn_id: 'T-1001',
  status: 'approved',
  outcome: 'attributed',
  reason: '',
  campaign_id: 'demo',
  publisher_id: 'pub-42',
  sub1: 'gclid-abc',
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: '',
  click_ts: click.ts,
  conversion_ts: postback.conversion_ts,
  ctit_ms: 90_000,
  revenue: '19.99',
  payout: '2.5',
  currency: 'EUR',
  is_fast: false,
  updated_at: 1_700_000_200_000,
}

/** The encoded form of `event` with some fields replaced or removed, bypassing encode checks. */
function tampered(event: object, changes: Record<string, unknown>): Buffer {
  const copy: Record<string, unknown> = { ...event, ...changes }
  for (const [field, value] of Object.entries(changes)) if (value === undefined) delete copy[field]
  return Buffer.from(JSON.stringify(copy))
}

function reasonOf(result: { ok: boolean; reason?: string }): string {
  expect(result.ok).toBe(false)
  return result.reason ?? ''
}

describe('encodeEvent / decodeEvent', () => {
  it('round-trips each contract', () => {
    expect(decodeEvent(clickV1Contract, encodeEvent(clickV1Contract, click))).toEqual({ ok: true, value: click })
    expect(decodeEvent(postbackV1Contract, encodeEvent(postbackV1Contract, postback))).toEqual({
      ok: true,
      value: postback,
    })
    expect(decodeEvent(outcomeV1Contract, encodeEvent(outcomeV1Contract, outcome))).toEqual({ ok: true, value: outcome })
  })

  it('encodes as JSON carrying the schema version', () => {
    const json: unknown = JSON.parse(encodeEvent(clickV1Contract, click).toString('utf8'))
    expect(json).toMatchObject({ v: 1, click_id: click.click_id, is_duplicate: true })
  })

  it('refuses to encode a value outside the contract, naming the field', () => {
    const bad = { ...postback, revenue: '-1' }
    expect(() => encodeEvent(postbackV1Contract, bad)).toThrow(InvalidEventError)
    expect(() => encodeEvent(postbackV1Contract, bad)).toThrow(/PostbackV1: revenue/)
  })

  it('accepts strings, Uint8Arrays and Buffer slices', () => {
    const encoded = encodeEvent(clickV1Contract, click)
    const framed = Buffer.concat([Buffer.from('xx'), encoded, Buffer.from('yy')]).subarray(2, 2 + encoded.length)
    expect(decodeEvent(clickV1Contract, encoded.toString('utf8')).ok).toBe(true)
    expect(decodeEvent(clickV1Contract, new Uint8Array(encoded)).ok).toBe(true)
    expect(decodeEvent(clickV1Contract, framed)).toEqual({ ok: true, value: click })
  })

  it('tolerates fields it does not know, so producers can add one without breaking consumers', () => {
    expect(decodeEvent(clickV1Contract, tampered(click, { country: 'DE' })).ok).toBe(true)
  })

  it('rejects what is not a JSON object', () => {
    expect(reasonOf(decodeEvent(clickV1Contract, Buffer.from('{"v":1,')))).toMatch(/^not valid JSON/)
    expect(reasonOf(decodeEvent(clickV1Contract, Buffer.from('')))).toMatch(/^not valid JSON/)
    expect(reasonOf(decodeEvent(clickV1Contract, null))).toMatch(/empty message/)
    for (const json of ['[1]', '"click"', '42', 'null']) {
      expect(reasonOf(decodeEvent(clickV1Contract, json))).toBe('not a JSON object')
    }
  })

  it('rejects a missing or different schema version', () => {
    expect(reasonOf(decodeEvent(clickV1Contract, tampered(click, { v: undefined })))).toBe(
      'missing schema version field v',
    )
    expect(reasonOf(decodeEvent(clickV1Contract, tampered(click, { v: 2 })))).toBe(
      'unsupported schema version v=2 for ClickV1 (expected v=1)',
    )
    expect(reasonOf(decodeEvent(clickV1Contract, tampered(click, { v: '1' })))).toMatch(/v="1"/)
  })

  it('names the field that is missing, too long, of the wrong type or outside its set', () => {
    const cases: [EventContract, Buffer, RegExp][] = [
      [clickV1Contract, tampered(click, { campaign_id: undefined }), /^campaign_id: Expected required property/],
      [clickV1Contract, tampered(click, { user_agent: 'x'.repeat(1025) }), /^user_agent: Expected string length less or equal to 1024/],
      [clickV1Contract, tampered(click, { click_id: 'has space' }), /^click_id: .*a click ID/],
      [clickV1Contract, tampered(click, { click_id: 'A'.repeat(33) }), /^click_id: /],
      [clickV1Contract, tampered(click, { campaign_id: '' }), /^campaign_id: /],
      [clickV1Contract, tampered(click, { ts: 1.5 }), /^ts: Expected integer/],
      [clickV1Contract, tampered(click, { ts: '1700000000000' }), /^ts: /],
      [clickV1Contract, tampered(click, { is_bot: 'false' }), /^is_bot: Expected boolean/],
      [clickV1Contract, tampered(click, { window_seconds: 0 }), /^window_seconds: /],
      [postbackV1Contract, tampered(postback, { channel: 'email' }), /^channel: Expected union value/],
      [postbackV1Contract, tampered(postback, { status: 'APPROVED' }), /^status: /],
      [postbackV1Contract, tampered(postback, { event: 'Purchase' }), /^event: .*a–z 0–9 _/],
      [postbackV1Contract, tampered(postback, { click_id: '' }), /^click_id: /],
      [postbackV1Contract, tampered(postback, { click_id: 'c'.repeat(129) }), /^click_id: /],
      [postbackV1Contract, tampered(postback, { currency: 'eur' }), /^currency: .*ISO 4217/],
      [postbackV1Contract, tampered(postback, { txn_id: 't'.repeat(129) }), /^txn_id: /],
      [outcomeV1Contract, tampered(outcome, { reason: 'fraud' }), /^reason: /],
      [outcomeV1Contract, tampered(outcome, { outcome: 'maybe' }), /^outcome: /],
      [outcomeV1Contract, tampered(outcome, { version: 0 }), /^version: /],
    ]
    for (const [contract, message, reason] of cases) {
      expect(reasonOf(decodeEvent(contract, message)), message.toString()).toMatch(reason)
    }
  })

  it('takes money only as a non-negative decimal string with at most 6 fraction digits', () => {
    for (const revenue of ['0', '0.5', '19.99', '999999999999.999999', '1.000000']) {
      expect(decodeEvent(postbackV1Contract, tampered(postback, { revenue })).ok, revenue).toBe(true)
    }
    for (const revenue of ['-1', '-0.01', '1.1234567', '1.', '.5', '01', '1e3', ' 1', '1,5', '1000000000000', '']) {
      expect(reasonOf(decodeEvent(postbackV1Contract, tampered(postback, { revenue }))), revenue).toMatch(
        /^revenue: .*decimal ≥ 0/,
      )
    }
    expect(reasonOf(decodeEvent(postbackV1Contract, tampered(postback, { revenue: 19.99 })))).toMatch(/^revenue: /)
    expect(reasonOf(decodeEvent(outcomeV1Contract, tampered(outcome, { payout: '0.0000001' })))).toMatch(/^payout: /)
  })

  it('never throws on garbage', () => {
    const samples: (string | Uint8Array)[] = [
      '{"__proto__":{"v":1}}',
      '{"constructor":{"prototype":{}}}',
      '['.repeat(100_000),
      '\u0000\uffff',
    ]
    for (let i = 0; i < 500; i++) samples.push(randomBytes(i % 64))
    for (const sample of samples) {
      expect(() => decodeEvent(clickV1Contract, sample)).not.toThrow()
      expect(decodeEvent(clickV1Contract, sample).ok).toBe(false)
    }
  })
})

describe('encodeClick', () => {
  // Text a click may carry: plain, JSON's escapes, controls, U+2028, non-ASCII, paired and lone surrogates.
  const pieces = ['a', 'Z', '0', ' ', '/', '?', '&', '=', '"', '\\', '\n', '\t', '\u0000', '\u001f', '\u007f', '\u2028', 'ü', '日', '😀', '\ud800', '\udfff', '</']
  const randomText = (maxLength: number) => {
    const length = Math.floor(Math.random() * Math.min(maxLength, 40))
    let text = ''
    while (text.length < length) text += pieces[Math.floor(Math.random() * pieces.length)]!
    return text.slice(0, maxLength)
  }
  const randomClick = (): ClickV1 => ({
    ...click,
    ts: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER),
    campaign_id: randomText(64) || 'c',
    publisher_id: randomText(128),
    sub1: randomText(512),
    sub2: randomText(512),
    sub3: randomText(512),
    sub4: randomText(512),
    sub5: randomText(512),
    source: randomText(256),
    creative: randomText(256),
    user_key: randomText(256),
    ip: randomText(45),
    user_agent: randomText(1024),
    referer: randomText(2048),
    destination: randomText(8192),
    is_bot: Math.random() < 0.5,
    is_duplicate: Math.random() < 0.5,
    window_seconds: 1 + Math.floor(Math.random() * 2_147_483_646),
    max_window_seconds: 1 + Math.floor(Math.random() * 2_147_483_646),
  })

  it("writes the same bytes as encodeEvent (JSON.stringify), for 20,000 random clicks", () => {
    for (let i = 0; i < 20_000; i++) {
      const value = randomClick()
      expect(encodeClick(value).equals(encodeEvent(clickV1Contract, value)), JSON.stringify(value)).toBe(true)
    }
    expect(encodeClick(click).equals(encodeEvent(clickV1Contract, click))).toBe(true)
  })

  it('round-trips through decodeEvent', () => {
    for (let i = 0; i < 1_000; i++) {
      const value = randomClick()
      expect(decodeEvent(clickV1Contract, encodeClick(value))).toEqual({ ok: true, value: JSON.parse(JSON.stringify(value)) })
    }
  })

  it('refuses a click outside the contract, naming the field, as encodeEvent does', () => {
    expect(() => encodeClick({ ...click, click_id: 'not a click id!' })).toThrow(InvalidEventError)
    expect(() => encodeClick({ ...click, user_agent: 'x'.repeat(1025) })).toThrow(/user_agent/)
    expect(() => encodeClick({ ...click, ts: 1.5 })).toThrow(/ts/)
  })
})

describe('dead letters', () => {
  it('keep a readable payload as text and round-trip through the codec', () => {
    const value = Buffer.from('{"v":1,"oops"')
    const deadLetter = deadLetterFor(
      { sourceTopic: 'clicks', partition: 3, offset: '12345', key: Buffer.from('abc'), value, reason: 'not valid JSON' },
      1_700_000_000_000,
    )
    expect(deadLetter).toMatchObject({ key: 'abc', payload: '{"v":1,"oops"', payload_encoding: 'utf8' })
    const decoded = decodeEvent(deadLetterV1Contract, encodeEvent(deadLetterV1Contract, deadLetter))
    expect(decoded).toEqual({ ok: true, value: deadLetter })
    expect(deadLetterPayload(deadLetter).equals(value)).toBe(true)
  })

  it('go to Kafka under the original key, as the encoded dead letter', () => {
    const failed = { sourceTopic: 'conversions', partition: 1, offset: '7', key: Buffer.from('click-1'), value: Buffer.from('x'), reason: 'bad' }
    const message = deadLetterMessage(failed, 1_700_000_000_000)
    expect(message.key).toBe('click-1')
    expect(decodeEvent(deadLetterV1Contract, message.value)).toEqual({ ok: true, value: deadLetterFor(failed, 1_700_000_000_000) })
  })

  it('keep binary payloads byte for byte as base64, and an absent key or value as empty', () => {
    const value = Buffer.from([0xff, 0xfe, 0x00, 0x80])
    const binary = deadLetterFor({ sourceTopic: 't', partition: 0, offset: '0', key: null, value, reason: 'r' })
    expect(binary.payload_encoding).toBe('base64')
    expect(binary.key).toBe('')
    expect(deadLetterPayload(binary).equals(value)).toBe(true)

    const empty = deadLetterFor({ sourceTopic: 't', partition: 0, offset: '0', key: null, value: null, reason: 'r' })
    expect(deadLetterPayload(empty).length).toBe(0)
    expect(decodeEvent(deadLetterV1Contract, encodeEvent(deadLetterV1Contract, empty)).ok).toBe(true)
  })

  it('cut an overlong reason so the dead letter itself stays valid', () => {
    const deadLetter = deadLetterFor({
      sourceTopic: 't',
      partition: 0,
      offset: '9',
      key: null,
      value: Buffer.from('x'),
      reason: 'r'.repeat(5000),
    })
    expect(deadLetter.reason).toHaveLength(1024)
    expect(() => encodeEvent(deadLetterV1Contract, deadLetter)).not.toThrow()
  })
})
