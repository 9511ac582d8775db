import { beforeAll, describe, expect, it } from 'vitest'
import { generateClickId } from '@clickjoin/click-id'
import type { CampaignInput } from '@clickjoin/campaigns'
import { decodeEvent, deadLetterV1Contract, type ClickV1, type OutcomeV1, type PostbackV1 } from '@clickjoin/contracts'
import { readTopic, waitFor } from '@clickjoin/local-stack/testing'
import {
  assertRepeatsIdentical,
  attributorSuite,
  clicksInRedis,
  makeClick,
  makePostback,
  type OutcomeMessage,
  readOutcomes,
  REDIS_TARGETS,
  testKeyring,
} from './harness.ts'

const HOUR = 3_600_000
const campaign: CampaignInput = {
  destination: 'https://shop.example/land?c={click_id}',
  status: 'active',
  window_seconds: 3_600,
  currency: 'EUR',
  payout: { type: 'cpa', amount: '2.50' },
  events: {
    install: { window_seconds: 60 },
    purchase: { payout: { type: 'revshare', percent: '10' } },
    level_up: { repeatable: true },
  },
}

/** One SPEC §5 rule: a click (or none), the postbacks sent, and the versions expected per conversion. */
interface RuleCase {
  name: string
  /** Offset of the click from the case's base time; null = no click is ever recorded. */
  click: number | null
  clickId?: string
  postbacks: (clickId: string, clickTs: number) => Partial<PostbackV1>[]
  /** Expected outcome messages, per conversion in the order of their versions. */
  expected: Partial<OutcomeV1>[][]
}

const cases: RuleCase[] = [
  { name: 'inside the window', click: 0, postbacks: (_, t) => [{ conversion_ts: t + HOUR / 2 }],
    expected: [[{ outcome: 'attributed', reason: '', payout: '2.5', currency: 'EUR', ctit_ms: HOUR / 2, is_fast: false }]] },
  { name: 'at the end of the window', click: 0, postbacks: (_, t) => [{ conversion_ts: t + HOUR }],
    expected: [[{ outcome: 'attributed', payout: '2.5' }]] },
  { name: 'outside the window', click: 0, postbacks: (_, t) => [{ conversion_ts: t + HOUR + 1_000 }],
    expected: [[{ outcome: 'rejected', reason: 'expired', payout: '0', campaign_id: 'rules' }]] },
  { name: 'inside a per-event window', click: 0, postbacks: (_, t) => [{ event: 'install', conversion_ts: t + 59_000 }],
    expected: [[{ outcome: 'attributed', event: 'install' }]] },
  { name: 'outside a per-event window', click: 0, postbacks: (_, t) => [{ event: 'install', conversion_ts: t + 61_000 }],
    expected: [[{ outcome: 'rejected', reason: 'expired' }]] },
  { name: '299 s before the click counts as at the click', click: 0, postbacks: (_, t) => [{ conversion_ts: t - 299_000 }],
    expected: [[{ outcome: 'attributed', ctit_ms: 0, is_fast: true, payout: '2.5' }]] },
  { name: '301 s before the click', click: 0, postbacks: (_, t) => [{ conversion_ts: t - 301_000 }],
    expected: [[{ outcome: 'rejected', reason: 'before_click', payout: '0' }]] },
  { name: 'unknown click (never recorded)', click: null, postbacks: (_, t) => [{ conversion_ts: t }],
    expected: [[{ outcome: 'rejected', reason: 'unknown_click', campaign_id: '', click_ts: 0 }]] },
  { name: 'forged click ID', click: null, clickId: 'not-a-click-id-at-all', postbacks: (_, t) => [{ conversion_ts: t }],
    expected: [[{ outcome: 'rejected', reason: 'invalid_click_id' }]] },
  { name: 'tampered click ID', click: null, clickId: 'TAMPER', postbacks: (_, t) => [{ conversion_ts: t }],
    expected: [[{ outcome: 'rejected', reason: 'invalid_click_id' }]] },
  { name: 'duplicate by txn_id', click: 0,
    postbacks: (_, t) => [{ txn_id: 'T-dup', conversion_ts: t + 60_000 }, { txn_id: 'T-dup', conversion_ts: t + 90_000, event: 'other' }],
    expected: [[{ outcome: 'attributed', txn_id: 'T-dup', ctit_ms: 60_000 }]] },
  { name: 'duplicate by (click, event)', click: 0,
    postbacks: (_, t) => [{ event: 'signup', conversion_ts: t + 60_000 }, { event: 'signup', conversion_ts: t + 70_000 }],
    expected: [[{ outcome: 'attributed', event: 'signup', ctit_ms: 60_000 }]] },
  { name: 'same click, other event: another conversion', click: 0,
    postbacks: (_, t) => [{ event: 'signup', conversion_ts: t + 60_000 }, { event: 'lead', conversion_ts: t + 70_000 }],
    expected: [[{ event: 'signup' }], [{ event: 'lead' }]] },
  { name: 'repeatable events: every postback is a conversion', click: 0,
    postbacks: (_, t) => [{ event: 'level_up', conversion_ts: t + 60_000 }, { event: 'level_up', conversion_ts: t + 70_000 }],
    expected: [[{ event: 'level_up', ctit_ms: 60_000 }], [{ event: 'level_up', ctit_ms: 70_000 }]] },
  { name: 'pending → approved → rejected, payout following the status', click: 0,
    postbacks: (_, t) => [
      { txn_id: 'T-life', status: 'pending', revenue: '50', conversion_ts: t + 60_000 },
      { txn_id: 'T-life', status: 'pending', conversion_ts: t + 60_000 },
      { txn_id: 'T-life', status: 'approved', conversion_ts: t + 60_000 },
      { txn_id: 'T-life', status: 'rejected', conversion_ts: t + 60_000 },
    ],
    expected: [[
      { version: 1, status: 'pending', payout: '0', revenue: '50', outcome: 'attributed' },
      { version: 2, status: 'approved', payout: '2.5', revenue: '50', outcome: 'attributed' },
      { version: 3, status: 'rejected', payout: '0', outcome: 'attributed' },
    ]] },
  { name: 'cpa pays the amount per approved conversion', click: 0, postbacks: (_, t) => [{ revenue: '99.99', conversion_ts: t + 60_000 }],
    expected: [[{ payout: '2.5', revenue: '99.99' }]] },
  { name: 'revshare pays percent × revenue', click: 0,
    postbacks: (_, t) => [{ event: 'purchase', revenue: '19.990000', currency: 'USD', conversion_ts: t + 60_000 }],
    expected: [[{ payout: '1.999', revenue: '19.99', currency: 'USD' }]] },
  { name: 'is_fast under 10 s', click: 0, postbacks: (_, t) => [{ conversion_ts: t + 9_999 }],
    expected: [[{ is_fast: true, ctit_ms: 9_999 }]] },
  { name: 'not fast at 10 s', click: 0, postbacks: (_, t) => [{ conversion_ts: t + 10_000 }],
    expected: [[{ is_fast: false, ctit_ms: 10_000 }]] },
]

describe.each(REDIS_TARGETS)('attribution rules (SPEC §5) through Kafka and Redis (%s)', (target) => {
  const suite = attributorSuite('attr_rules', target, { rules: campaign }, { graceMs: 2_000 })
  const baseTs = Date.now() - 3 * HOUR
  const sent = new Map<string, { clickId: string; postbacks: PostbackV1[] }>()
  let messages: OutcomeMessage[] = []

  beforeAll(async () => {
    const clicks: ClickV1[] = []
    for (const c of cases) {
      const clickTs = baseTs + (c.click ?? 0)
      const click = makeClick('rules', campaign, clickTs)
      let clickId = c.clickId ?? click.click_id
      if (clickId === 'TAMPER') clickId = `${click.click_id.slice(0, 20)}${click.click_id[20] === 'A' ? 'B' : 'A'}${click.click_id.slice(21)}`
      if (c.click === null && c.clickId === undefined) clickId = generateClickId(testKeyring) // genuine, never clicked
      if (c.click !== null) clicks.push(click)
      const postbacks = c.postbacks(clickId, clickTs).map((p) => makePostback(clickId, clickTs, p))
      sent.set(c.name, { clickId, postbacks })
    }
    await suite.writer.clicks(clicks)
    // Clicks first, as in life; the late-click test covers the other order.
    await waitFor(() => clicksInRedis(suite.redis, suite.world, clicks.map((c) => c.click_id)), (n) => n === clicks.length, 20_000, 'clicks recorded')
    // A malformed message ahead of the last case's postbacks on their partition: they must still be decided.
    await suite.writer.raw(suite.world.topics.conversions, sent.get(cases.at(-1)!.name)!.clickId, '{"v":1,"click_id":')
    for (const c of cases) await suite.writer.postbacks(sent.get(c.name)!.postbacks) // in order: a status sequence must stay in order
    // A redelivered postback (same postback_id).
    await suite.writer.postbacks([sent.get('inside the window')!.postbacks[0]!])

    const expectedMessages = cases.reduce((n, c) => n + c.expected.flat().length, 0) + 1
    messages = await waitFor(() => readOutcomes(suite.world), (m) => m.length >= expectedMessages, 30_000, 'all outcomes')
  })


  for (const c of cases) {
    it(c.name, () => {
      const { clickId, postbacks } = sent.get(c.name)!
      const mine = messages.filter((m) => m.outcome.click_id === clickId && postbacks.some((p) => p.postback_id === m.outcome.postback_id))
      const byConversion = new Map<string, OutcomeV1[]>()
      for (const m of mine) {
        const list = byConversion.get(m.outcome.conversion_id) ?? []
        if (!list.some((o) => o.version === m.outcome.version)) list.push(m.outcome)
        byConversion.set(m.outcome.conversion_id, list)
      }
      const actual = [...byConversion.values()]
        .map((list) => list.sort((a, b) => a.version - b.version))
        .sort((a, b) => a[0]!.conversion_ts - b[0]!.conversion_ts)
      expect(actual.map((list) => list.map((o) => o.version))).toEqual(c.expected.map((list) => list.map((_, i) => i + 1)))
      actual.forEach((list, i) => list.forEach((o, j) => expect(o).toMatchObject(c.expected[i]![j]!)))
      for (const m of mine) expect(m.key).toBe(clickId)
    })
  }

  it('republishes the identical outcome for a redelivered postback, and nothing new', () => {
    const { postbacks } = sent.get('inside the window')!
    const copies = messages.filter((m) => m.outcome.postback_id === postbacks[0]!.postback_id)
    // At least the two publications; a further identical copy is allowed (see docs/delivery.md).
    expect(copies.length).toBeGreaterThanOrEqual(2)
    for (const copy of copies) expect(copy.raw).toBe(copies[0]!.raw)
    expect(assertRepeatsIdentical(messages).repeats).toBeGreaterThanOrEqual(1)
  })

  it('dead-letters a malformed message with the reason and keeps the partition moving', async () => {
    const deadLetters = await waitFor(() => readTopic(suite.world.brokers, suite.world.topics.deadLetter), (m) => m.length >= 1, 10_000, 'dead letter')
    const decoded = decodeEvent(deadLetterV1Contract, deadLetters[0]!.value)
    expect(decoded.ok && decoded.value).toMatchObject({
      source_topic: suite.world.topics.conversions,
      key: sent.get(cases.at(-1)!.name)!.clickId,
      payload: '{"v":1,"click_id":',
    })
    expect(decoded.ok && decoded.value.reason).toMatch(/^not valid JSON/)
  })
})
