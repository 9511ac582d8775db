import { describe, expect, it } from 'vitest'
import { campaignFromInput } from '@clickjoin/campaigns'
import type { ClickIdVerification } from '@clickjoin/click-id'
import type { OutcomeV1, PostbackV1 } from '@clickjoin/contracts'
import { sqlString } from './cold-tier.ts'
import { clickMayBeCold, conversionMayBeCold, planDecision, type PlanFacts } from './planning.ts'
import type { ClickState } from './rules.ts'

const NOW = 1_800_000_000_000
const HOT_MS = 172_800_000
const campaign = campaignFromInput('c', { destination: 'https://x.example/', status: 'active', window_seconds: 8, payout: { type: 'cpa', amount: '3' } })
const valid = (createdAtMs: number): ClickIdVerification => ({ valid: true, createdAtMs, keyId: 1 })
const postback = (changes: Partial<PostbackV1> = {}): PostbackV1 => ({
  v: 1,
  postback_id: 'pb-1',
  received_at: NOW,
  channel: 'postback',
  partner_id: 'acme',
  click_id: 'x'.repeat(32),
  event: 'conversion',
  txn_id: '',
  revenue: '10',
  currency: 'USD',
  status: 'approved',
  conversion_ts: NOW,
  ...changes,
})
const click = (ts: number): ClickState => ({ clickId: 'x'.repeat(32), ts, campaignId: 'c', publisherId: 'p', subs: ['', '', '', '', ''], windowSeconds: 8 })

function facts(changes: Partial<PlanFacts>): PlanFacts {
  return {
    candidate: { postback: postback(), json: '{}', offset: '1', parkedDeadlineMs: undefined },
    verification: valid(NOW - 1_000),
    conversionId: 'e:conversion:x',
    click: undefined,
    previous: undefined,
    campaignOf: (id) => (id === 'c' ? campaign : undefined),
    longestWindowSeconds: 30 * 86_400,
    graceMs: 60_000,
    nowMs: NOW,
    ...changes,
  }
}

describe('which tier to ask', () => {
  it('looks for a click in ClickHouse only once its ID is older than the hot period', () => {
    expect(clickMayBeCold(valid(NOW - HOT_MS + 1), NOW, HOT_MS)).toBe(false)
    expect(clickMayBeCold(valid(NOW - HOT_MS), NOW, HOT_MS)).toBe(true)
    expect(clickMayBeCold({ valid: false, reason: 'bad_mac' }, NOW, HOT_MS)).toBe(false)
  })

  it('looks for a conversion in ClickHouse when its identity can outlive its click ID (txn_id) or the click is cold', () => {
    expect(conversionMayBeCold(postback(), valid(NOW - 1_000), NOW, HOT_MS)).toBe(false)
    expect(conversionMayBeCold(postback({ txn_id: 'T' }), valid(NOW - 1_000), NOW, HOT_MS)).toBe(true)
    expect(conversionMayBeCold(postback(), valid(NOW - HOT_MS - 1), NOW, HOT_MS)).toBe(true)
    expect(conversionMayBeCold(postback(), { valid: false, reason: 'malformed' }, NOW, HOT_MS)).toBe(true)
  })
})

/** A real first decision: attributed, approved, payout 3. */
function firstDecision(): OutcomeV1 {
  const plan = planDecision(facts({ click: click(NOW - 1_000) }))
  if (plan.kind !== 'commit' || !plan.outcome) throw new Error('expected a decision')
  expect(plan.outcome).toMatchObject({ outcome: 'attributed', payout: '3', version: 1 })
  return plan.outcome
}

describe('planDecision', () => {
  it("judges expired by the click's own window, whatever the longest window of other campaigns", () => {
    const plan = planDecision(facts({ click: click(NOW - 9_000) }))
    expect(plan).toMatchObject({ kind: 'commit', expectedVersion: 0, coldVersion: 0, newVersion: 1 })
    expect(plan.kind === 'commit' && plan.outcome).toMatchObject({ outcome: 'rejected', reason: 'expired' })
  })

  it('parks a postback whose click is in neither tier, then waits', () => {
    expect(planDecision(facts({}))).toEqual({ kind: 'park', deadlineMs: NOW + 60_000 })
    const parked = facts({})
    parked.candidate = { ...parked.candidate, parkedDeadlineMs: NOW + 1 }
    expect(planDecision(parked)).toEqual({ kind: 'wait' })
  })

  it('makes a status update of a conversion found only in ClickHouse, compare-and-set against its version there', () => {
    const before = { ...firstDecision(), version: 4 }
    const plan = planDecision(
      facts({ candidate: { postback: postback({ status: 'rejected' }), json: '{}', offset: '1', parkedDeadlineMs: undefined }, previous: { conversion: { version: 4, outcome: before }, tier: 'cold' } }),
    )
    expect(plan).toMatchObject({ kind: 'commit', expectedVersion: 4, coldVersion: 4, newVersion: 5, statusUpdate: true })
    expect(plan.kind === 'commit' && plan.outcome).toMatchObject({ status: 'rejected', payout: '0', outcome: 'attributed' })
  })

  it('a hot previous version never counts as cold', () => {
    const before = firstDecision()
    expect(planDecision(facts({ previous: { conversion: { version: 1, outcome: before }, tier: 'hot' } }))).toMatchObject({
      kind: 'commit',
      expectedVersion: 1,
      coldVersion: 0,
      newVersion: 0,
    })
  })
})

describe('sqlString', () => {
  it('quotes any text as one ClickHouse string literal', () => {
    expect(sqlString("t:acme:O'Brien\\1")).toBe("'t:acme:O\\'Brien\\\\1'")
  })
})
