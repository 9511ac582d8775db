import { describe, expect, it } from 'vitest'
import { campaignFromInput } from '@clickjoin/campaigns'
import type { PostbackV1 } from '@clickjoin/contracts'
import {
  conversionIdentity,
  decideConversion,
  eventRulesFor,
  fromMicros,
  outlivedEveryWindow,
  payoutFor,
  toMicros,
  windowVerdict,
  type ClickState,
} from './rules.ts'

const clickTs = 1_700_000_000_000
const click: ClickState = {
  clickId: 'AQGMxUo1gAB3c2VjcmV0cmFuZG9tbWF',
  ts: clickTs,
  campaignId: 'summer',
  publisherId: 'pub-42',
  subs: ['s1', '', '', '', 's5'],
  windowSeconds: 3_600,
}
const campaign = campaignFromInput('summer', {
  destination: 'https://shop.example/land',
  status: 'active',
  window_seconds: 3_600,
  currency: 'EUR',
  payout: { type: 'cpa', amount: '2.50' },
  events: {
    install: { window_seconds: 60 },
    purchase: { payout: { type: 'revshare', percent: '12.5' } },
    level_up: { repeatable: true },
  },
})

function postback(changes: Partial<PostbackV1> = {}): PostbackV1 {
  return {
    v: 1,
    postback_id: 'pb-1',
    received_at: clickTs + 100_000,
    channel: 'postback',
    partner_id: 'acme',
    click_id: click.clickId,
    event: 'conversion',
    txn_id: '',
    revenue: '0',
    currency: '',
    status: 'approved',
    conversion_ts: clickTs + 100_000,
    ...changes,
  }
}

describe('windowVerdict', () => {
  const cases: [string, number, string][] = [
    ['at the click', 0, 'attributed'],
    ['inside the window', 1_800_000, 'attributed'],
    ['at the end of the window', 3_600_000, 'attributed'],
    ['1 ms after the window', 3_600_001, 'expired'],
    ['299 s before the click (skew)', -299_000, 'attributed'],
    ['exactly 300 s before the click', -300_000, 'attributed'],
    ['301 s before the click', -301_000, 'before_click'],
  ]
  for (const [name, offset, expected] of cases) {
    it(name, () => {
      const verdict = windowVerdict(clickTs, clickTs + offset, 3_600)
      expect(verdict.outcome === 'attributed' ? 'attributed' : verdict.reason).toBe(expected)
    })
  }
})

describe('eventRulesFor', () => {
  it("takes the event's own window and payout, else the campaign's", () => {
    expect(eventRulesFor(campaign, click, 'install')).toMatchObject({ windowSeconds: 60, payout: { type: 'cpa' } })
    expect(eventRulesFor(campaign, click, 'purchase')).toMatchObject({ windowSeconds: 3_600, payout: { type: 'revshare' } })
    expect(eventRulesFor(campaign, click, 'level_up').repeatable).toBe(true)
    expect(eventRulesFor(undefined, click, 'x')).toEqual({ windowSeconds: 3_600, payout: null, repeatable: false, currency: '', pixelEnabled: false })
  })
})

describe('conversionIdentity', () => {
  it('is (partner, txn_id) when a txn_id is given, else (click_id, event), else the postback for repeatable events', () => {
    expect(conversionIdentity(postback({ txn_id: 'T-1' }), false)).toBe('t:acme:T-1')
    expect(conversionIdentity(postback({ txn_id: 'T-1', postback_id: 'other', click_id: 'x' }), true)).toBe('t:acme:T-1')
    expect(conversionIdentity(postback(), false)).toBe(`e:conversion:${click.clickId}`)
    expect(conversionIdentity(postback(), true)).toBe('p:pb-1')
    // The pixel has no partner: its identity is (campaign, txn_id), never a partner's, never another campaign's.
    const pixel = (changes: Partial<PostbackV1>) => postback({ channel: 'pixel', partner_id: '', ...changes })
    expect(conversionIdentity(pixel({ campaign_id: 'shop-a', txn_id: '1001' }), false)).toBe('c:shop-a:1001')
    expect(conversionIdentity(pixel({ campaign_id: 'shop-b', txn_id: '1001' }), false)).toBe('c:shop-b:1001')
    expect(conversionIdentity(pixel({ campaign_id: 'summer' }), false)).toBe(`x:conversion:${click.clickId}`)
  })
  it('hashes identities too long for the contract, stably', () => {
    const long = postback({ txn_id: 't'.repeat(128) })
    expect(conversionIdentity(long, false)).toMatch(/^h:[A-Za-z0-9_-]{43}$/)
    expect(conversionIdentity(long, false)).toBe(conversionIdentity({ ...long, postback_id: 'pb-2' }, false))
  })
})

describe('money', () => {
  it('converts decimal strings to micro-units and back without floats', () => {
    expect(toMicros('19.99')).toBe(19_990_000n)
    expect(toMicros('0.000001')).toBe(1n)
    expect(fromMicros(2_500_000n)).toBe('2.5')
    expect(fromMicros(0n)).toBe('0')
    expect(fromMicros(toMicros('999999999999.999999'))).toBe('999999999999.999999')
  })
  it('pays cpa per approved, attributed conversion and revshare as percent × revenue, half up', () => {
    const cpa = { type: 'cpa', amount: '2.50' } as const
    const revshare = { type: 'revshare', percent: '12.5' } as const
    expect(payoutFor(cpa, 'approved', '0', true)).toBe('2.5')
    expect(payoutFor(cpa, 'pending', '0', true)).toBe('0')
    expect(payoutFor(cpa, 'rejected', '0', true)).toBe('0')
    expect(payoutFor(cpa, 'approved', '0', false)).toBe('0')
    expect(payoutFor(revshare, 'approved', '19.99', true)).toBe('2.49875')
    expect(payoutFor({ type: 'revshare', percent: '33.333333' }, 'approved', '0.1', true)).toBe('0.033333')
    expect(payoutFor({ type: 'revshare', percent: '50' }, 'approved', '0.000001', true)).toBe('0.000001') // 0.0000005 rounds up
    expect(payoutFor(revshare, 'approved', '0.1', true)).toBe('0.0125') // 0.1 × 12.5 % where floats give 0.012499…
    expect(payoutFor(null, 'approved', '10', true)).toBe('0')
  })
})

describe('decideConversion', () => {
  const nowMs = clickTs + 200_000
  const rules = eventRulesFor(campaign, click, 'conversion')

  it('attributes a conversion inside the window with the click fields, payout and is_fast', () => {
    const decision = decideConversion({ postback: postback({ revenue: '10.000000' }), conversionId: 'c', rules, previous: undefined, click, nowMs })
    expect(decision).toEqual({
      kind: 'new',
      outcome: expect.objectContaining({
        conversion_id: 'c',
        version: 1,
        outcome: 'attributed',
        reason: '',
        campaign_id: 'summer',
        publisher_id: 'pub-42',
        sub1: 's1',
        sub5: 's5',
        click_ts: clickTs,
        ctit_ms: 100_000,
        revenue: '10',
        payout: '2.5',
        currency: 'EUR',
        is_fast: false,
        updated_at: nowMs,
      }),
    })
  })

  it('flags a conversion under 10 s after the click as fast, and 10 s as not', () => {
    const at = (ms: number) =>
      decideConversion({ postback: postback({ conversion_ts: clickTs + ms }), conversionId: 'c', rules, previous: undefined, click, nowMs })
    expect(at(9_999)).toMatchObject({ outcome: { is_fast: true } })
    expect(at(10_000)).toMatchObject({ outcome: { is_fast: false } })
  })

  it('rejects without a click, keeping the postback currency and paying nothing', () => {
    const decision = decideConversion({
      postback: postback({ currency: 'USD', revenue: '5' }),
      conversionId: 'c',
      rules: eventRulesFor(undefined, undefined, 'conversion'),
      previous: undefined,
      click: undefined,
      noClickReason: 'invalid_click_id',
      nowMs,
    })
    expect(decision).toMatchObject({
      kind: 'new',
      outcome: { outcome: 'rejected', reason: 'invalid_click_id', campaign_id: '', click_ts: 0, payout: '0', currency: 'USD' },
    })
  })

  it('treats the same status as a duplicate and another status as an update that keeps the attribution', () => {
    const first = decideConversion({ postback: postback({ status: 'pending', revenue: '8' }), conversionId: 'c', rules, previous: undefined, click, nowMs })
    if (first.kind !== 'new') throw new Error('expected a new conversion')
    expect(first.outcome.payout).toBe('0')
    const previous = { version: 1, outcome: first.outcome }
    expect(decideConversion({ postback: postback({ status: 'pending', postback_id: 'pb-2' }), conversionId: 'c', rules, previous, click: undefined, nowMs }))
      .toEqual({ kind: 'duplicate' })
    const approved = decideConversion({ postback: postback({ postback_id: 'pb-3' }), conversionId: 'c', rules, previous, click: undefined, nowMs: nowMs + 1 })
    expect(approved).toMatchObject({
      kind: 'status_update',
      outcome: { version: 2, status: 'approved', postback_id: 'pb-3', outcome: 'attributed', revenue: '8', payout: '2.5', click_ts: clickTs, updated_at: nowMs + 1 },
    })
  })

  it('counts a conversion within the clock-skew allowance as at the click: ctit_ms 0, never negative', () => {
    const decision = decideConversion({ postback: postback({ conversion_ts: clickTs - 120_000 }), conversionId: 'c', rules, previous: undefined, click, nowMs })
    expect(decision).toMatchObject({ kind: 'new', outcome: { outcome: 'attributed', ctit_ms: 0, is_fast: true } })
    const before = decideConversion({ postback: postback({ conversion_ts: clickTs - 400_000 }), conversionId: 'c', rules, previous: undefined, click, nowMs })
    expect(before).toMatchObject({ kind: 'new', outcome: { outcome: 'rejected', reason: 'before_click', ctit_ms: 0 } })
  })

  it('counts a pixel only for a click of its campaign, and only while that campaign has pixel_enabled', () => {
    const pixel = (campaignId: string) => postback({ channel: 'pixel', partner_id: '', campaign_id: campaignId })
    const decide = (p: PostbackV1, pixelEnabled: boolean) =>
      decideConversion({ postback: p, conversionId: 'c', rules: { ...rules, pixelEnabled }, previous: undefined, click, nowMs })
    expect(decide(pixel('summer'), true)).toMatchObject({ outcome: { outcome: 'attributed', reason: '', payout: '2.5' } })
    expect(decide(pixel('winter'), true)).toMatchObject({ outcome: { outcome: 'rejected', reason: 'campaign_mismatch', payout: '0' } })
    expect(decide(pixel('summer'), false)).toMatchObject({ outcome: { outcome: 'rejected', reason: 'pixel_disabled', payout: '0' } })
    // An S2S postback does not depend on the pixel setting.
    expect(decide(postback(), false)).toMatchObject({ outcome: { outcome: 'attributed' } })
  })

  it('says whether a click ID is older than every window', () => {
    expect(outlivedEveryWindow(clickTs, clickTs + 3_600_000 + 300_000, 3_600)).toBe(false)
    expect(outlivedEveryWindow(clickTs, clickTs + 3_600_000 + 300_001, 3_600)).toBe(true)
  })
})
