import { createHash } from 'node:crypto'
import type { Campaign, Payout } from '@clickjoin/campaigns'
import { FIELD_MAX_LENGTH, type OutcomeV1, type PostbackV1 } from '@clickjoin/contracts'

/**
 * SPEC §5 as pure functions: no Redis, no Kafka, no clock. The attributor gathers the facts
 * (click, campaign rules, the conversion so far) and these decide; the Redis scripts only
 * make the decision stick atomically.
 */

/** A conversion up to this long before its click counts as at the click (clock skew). */
export const CLOCK_SKEW_TOLERANCE_MS = 300_000
/** Click-to-conversion time under this is flagged `is_fast`. */
export const FAST_CONVERSION_MS = 10_000

/** What the join needs of a click; the compact form kept in Redis (redis-state.ts). */
export interface ClickState {
  clickId: string
  ts: number
  campaignId: string
  publisherId: string
  subs: readonly [string, string, string, string, string]
  /** The campaign's window when the click happened. */
  windowSeconds: number
}

/** The campaign rules that apply to one event of one campaign. */
export interface EventRules {
  windowSeconds: number
  payout: Payout | null
  repeatable: boolean
  /** The campaign's currency, used when the postback named none; '' when unknown. */
  currency: string
  /** Whether the campaign takes browser pixel conversions. */
  pixelEnabled: boolean
}

export type RejectReason = 'unknown_click' | 'invalid_click_id' | 'expired' | 'before_click' | 'campaign_mismatch' | 'pixel_disabled'

/** Rules for `event`: the event's own window/payout when set, else the campaign's. */
export function eventRulesFor(campaign: Campaign | undefined, click: ClickState | undefined, event: string): EventRules {
  const own = campaign?.events[event]
  return {
    windowSeconds: own?.window_seconds ?? click?.windowSeconds ?? campaign?.window_seconds ?? 0,
    payout: own?.payout ?? campaign?.payout ?? null,
    repeatable: own?.repeatable ?? false,
    currency: campaign?.currency ?? '',
    pixelEnabled: campaign?.pixel_enabled ?? false,
  }
}

/**
 * The stable ID of the conversion a postback belongs to: `(partner, txn_id)` when a txn_id
 * was sent, else `(click_id, event)`, except for repeatable events, where every postback is
 * its own conversion. A pixel has no partner: `(campaign, txn_id)`, else `(click_id, event)`
 * in a space of its own, so a pixel hit never reaches a partner's S2S conversion (SPEC §3).
 * Readable when it fits the contract's length, else a hash of the same identity. The kind
 * prefix keeps the forms from ever colliding (partner IDs, campaign IDs and event names
 * contain no ':').
 */
export function conversionIdentity(postback: PostbackV1, repeatable: boolean): string {
  const pixel = postback.channel === 'pixel'
  const readable =
    postback.txn_id !== ''
      ? pixel
        ? `c:${postback.campaign_id ?? ''}:${postback.txn_id}`
        : `t:${postback.partner_id}:${postback.txn_id}`
      : repeatable
        ? `p:${postback.postback_id}`
        : `${pixel ? 'x' : 'e'}:${postback.event}:${postback.click_id}`
  if (readable.length <= FIELD_MAX_LENGTH.conversionId) return readable
  return `h:${createHash('sha256').update(readable).digest('base64url')}`
}

/** Where a conversion stands against its click's window. */
export function windowVerdict(
  clickTs: number,
  conversionTs: number,
  windowSeconds: number,
): { outcome: 'attributed'; reason: '' } | { outcome: 'rejected'; reason: 'expired' | 'before_click' } {
  const ctit = conversionTs - clickTs
  if (ctit < -CLOCK_SKEW_TOLERANCE_MS) return { outcome: 'rejected', reason: 'before_click' }
  if (ctit > windowSeconds * 1000) return { outcome: 'rejected', reason: 'expired' }
  return { outcome: 'attributed', reason: '' }
}

/**
 * A pixel counts only for a click of the campaign it names, and only while that campaign has
 * pixel_enabled (SPEC §3); the window verdict applies after that.
 */
export function pixelVerdict(
  postback: PostbackV1,
  click: ClickState,
  rules: EventRules,
): { outcome: 'rejected'; reason: 'campaign_mismatch' | 'pixel_disabled' } | undefined {
  if (postback.channel !== 'pixel') return undefined
  if (postback.campaign_id !== click.campaignId) return { outcome: 'rejected', reason: 'campaign_mismatch' }
  if (!rules.pixelEnabled) return { outcome: 'rejected', reason: 'pixel_disabled' }
  return undefined
}

/** Click-to-conversion time: a conversion within the clock-skew allowance counts as at the click, never negative. */
export function clickToConversionMs(clickTs: number, conversionTs: number): number {
  return Math.max(0, conversionTs - clickTs)
}

export function isFastConversion(ctitMs: number): boolean {
  return ctitMs < FAST_CONVERSION_MS
}

// Money: decimal strings with at most 6 fraction digits, computed as BigInt micro-units.
const MICROS = 1_000_000n
const DECIMAL = /^(\d+)(?:\.(\d{1,6}))?$/

export function toMicros(amount: string): bigint {
  const match = DECIMAL.exec(amount)
  if (match === null) throw new RangeError(`not a decimal amount with at most 6 fraction digits: "${amount}"`)
  return BigInt(match[1]!) * MICROS + BigInt((match[2] ?? '').padEnd(6, '0'))
}

/** The shortest decimal text of a micro-unit amount: 2500000n → "2.5", 0n → "0". */
export function fromMicros(micros: bigint): string {
  if (micros < 0n) throw new RangeError('negative amount')
  const whole = micros / MICROS
  const fraction = (micros % MICROS).toString().padStart(6, '0').replace(/0+$/, '')
  return fraction === '' ? whole.toString() : `${whole}.${fraction}`
}

/** What the publisher earns for a conversion: only attributed, approved conversions pay. */
export function payoutFor(payout: Payout | null, status: PostbackV1['status'], revenue: string, attributed: boolean): string {
  if (!attributed || status !== 'approved' || payout === null) return '0'
  if (payout.type === 'cpa') return fromMicros(toMicros(payout.amount))
  // percent × revenue ÷ 100, in micros: revenue_µ × percent_µ ÷ (100 × 10⁶), half up.
  const divisor = 100n * MICROS
  const product = toMicros(revenue) * toMicros(payout.percent)
  return fromMicros((product + divisor / 2n) / divisor)
}

/** The conversion as last decided: its latest version. */
export interface ConversionSoFar {
  version: number
  outcome: OutcomeV1
}

export type ConversionDecision =
  | { kind: 'new'; outcome: OutcomeV1 }
  | { kind: 'status_update'; outcome: OutcomeV1 }
  | { kind: 'duplicate' }

export interface ConversionFacts {
  postback: PostbackV1
  conversionId: string
  /** Rules of the click's (or, for a status update, the conversion's) campaign and event. */
  rules: EventRules
  /** The latest version of this conversion, when it was decided before. */
  previous: ConversionSoFar | undefined
  /** The click, when it was found. */
  click: ClickState | undefined
  /** Why there is no click to join, when `click` is undefined. */
  noClickReason?: 'unknown_click' | 'invalid_click_id' | 'expired'
  nowMs: number
}

/**
 * Decides one postback. A repeat of a decided conversion is a duplicate when its status is
 * unchanged, else a status update that keeps the attribution; otherwise the postback is a new
 * conversion judged against its click's window.
 */
export function decideConversion(facts: ConversionFacts): ConversionDecision {
  const { postback, previous, nowMs } = facts
  if (previous !== undefined) {
    if (previous.outcome.status === postback.status) return { kind: 'duplicate' }
    return { kind: 'status_update', outcome: statusUpdate(previous, postback, facts.rules, nowMs) }
  }
  return { kind: 'new', outcome: newConversion(facts) }
}

// The outcomes below are written out field by field: an object spread (`{ ...base, … }`) of
// this size costs V8 some 25–40 µs per object (measured in Node 20: a slow path of cloning
// then extending a large literal), more than all the rest of a decision.

function newConversion(facts: ConversionFacts): OutcomeV1 {
  const { postback, click, rules, nowMs } = facts
  const revenue = fromMicros(toMicros(postback.revenue))
  let outcome: OutcomeV1['outcome'] = 'rejected'
  let reason: OutcomeV1['reason'] = facts.noClickReason ?? 'unknown_click'
  let ctit = 0
  let payout = '0'
  if (click !== undefined) {
    const verdict = pixelVerdict(postback, click, rules) ?? windowVerdict(click.ts, postback.conversion_ts, rules.windowSeconds)
    outcome = verdict.outcome
    reason = verdict.reason
    ctit = clickToConversionMs(click.ts, postback.conversion_ts)
    payout = payoutFor(rules.payout, postback.status, revenue, outcome === 'attributed')
  }
  return {
    v: 1,
    conversion_id: facts.conversionId,
    version: 1,
    postback_id: postback.postback_id,
    click_id: postback.click_id,
    partner_id: postback.partner_id,
    event: postback.event,
    txn_id: postback.txn_id,
    status: postback.status,
    conversion_ts: postback.conversion_ts,
    revenue,
    currency: postback.currency !== '' ? postback.currency : rules.currency,
    updated_at: nowMs,
    outcome,
    reason,
    campaign_id: click?.campaignId ?? '',
    publisher_id: click?.publisherId ?? '',
    sub1: click?.subs[0] ?? '',
    sub2: click?.subs[1] ?? '',
    sub3: click?.subs[2] ?? '',
    sub4: click?.subs[3] ?? '',
    sub5: click?.subs[4] ?? '',
    click_ts: click?.ts ?? 0,
    ctit_ms: ctit,
    payout,
    is_fast: click !== undefined && isFastConversion(ctit),
  }
}

/**
 * The conversion keeps its click, attribution and times, and takes the new status. A status
 * update that carries revenue (e.g. the final amount on approval) replaces the revenue; one
 * without (revenue 0, e.g. a bare charge-back) keeps it. Payout follows status and revenue.
 */
function statusUpdate(previous: ConversionSoFar, postback: PostbackV1, rules: EventRules, nowMs: number): OutcomeV1 {
  const before = previous.outcome
  const revenue = toMicros(postback.revenue) > 0n ? fromMicros(toMicros(postback.revenue)) : before.revenue
  return {
    v: 1,
    conversion_id: before.conversion_id,
    version: previous.version + 1,
    postback_id: postback.postback_id,
    click_id: before.click_id,
    partner_id: before.partner_id,
    event: before.event,
    txn_id: before.txn_id,
    status: postback.status,
    conversion_ts: before.conversion_ts,
    revenue,
    currency: postback.currency !== '' ? postback.currency : before.currency,
    updated_at: nowMs,
    outcome: before.outcome,
    reason: before.reason,
    campaign_id: before.campaign_id,
    publisher_id: before.publisher_id,
    sub1: before.sub1,
    sub2: before.sub2,
    sub3: before.sub3,
    sub4: before.sub4,
    sub5: before.sub5,
    click_ts: before.click_ts,
    ctit_ms: before.ctit_ms,
    payout: payoutFor(rules.payout, postback.status, revenue, before.outcome === 'attributed'),
    is_fast: before.is_fast,
  }
}

/**
 * A click that is no longer in Redis may simply have outlived every window: when the click
 * ID's own creation time is further back than the longest window any campaign has, waiting
 * for the click is pointless and the conversion is `expired`.
 */
export function outlivedEveryWindow(clickCreatedAtMs: number, conversionTs: number, longestWindowSeconds: number): boolean {
  return conversionTs - clickCreatedAtMs > longestWindowSeconds * 1000 + CLOCK_SKEW_TOLERANCE_MS
}
