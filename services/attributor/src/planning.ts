import type { Campaign } from '@clickjoin/campaigns'
import type { ClickIdVerification } from '@clickjoin/click-id'
import { decodeEvent, encodeEventText, outcomeV1Contract, postbackV1Contract, type OutcomeV1, type PostbackV1 } from '@clickjoin/contracts'
import {
  conversionIdentity,
  decideConversion,
  eventRulesFor,
  outlivedEveryWindow,
  type ClickState,
  type ConversionSoFar,
} from './rules.ts'
import type { ParkedEntry, PostbackFacts } from './store.ts'

/**
 * Decision planning: from the facts gathered in Redis and ClickHouse to what must be written,
 * without I/O or clock (now is an argument). rules.ts decides a conversion; this decides what
 * the attributor does with a postback: replay, wait behind earlier ones, park, or commit.
 */

/** A postback to decide: fresh from the topic, or taken back out of the parked set. */
export interface Candidate {
  postback: PostbackV1
  json: string
  /** Kafka offset in the conversions partition: the order postbacks arrived in. */
  offset: string
  parkedDeadlineMs: number | undefined
  /**
   * The click whose parked hash holds it: its own, or — queued behind an earlier parked
   * postback of the same conversion — that one's click.
   */
  parkedUnder?: string
}

/** Parked postbacks in the order they must be decided: by deadline, then arrival. */
export function parkedInOrder(stored: Iterable<ParkedEntry>): Candidate[] {
  const candidates: Candidate[] = []
  for (const { deadlineMs, offset, json, parkedUnder } of stored) {
    const decoded = decodeEvent(postbackV1Contract, json)
    if (decoded.ok) candidates.push({ postback: decoded.value, json, offset, parkedDeadlineMs: deadlineMs, parkedUnder })
  }
  return candidates.sort(
    (a, b) => a.parkedDeadlineMs! - b.parkedDeadlineMs! || Number(BigInt(a.offset) - BigInt(b.offset)),
  )
}

/** What to do with a postback once Redis said what it knows of it. */
export type FirstLook =
  /** Decided already: a redelivery republishes that decision. */
  | { kind: 'replay'; conversionId: string; version: number }
  /** Decided already and this is its parked copy: only release it (its decider published it). */
  | { kind: 'release' }
  /** The click is here but earlier postbacks of it still wait: decide those first, then this. */
  | { kind: 'defer'; before: Candidate[] }
  /**
   * Earlier postbacks of the same conversion (txn_id) are parked for another click: park this
   * one behind them, under that click, so it cannot overtake them.
   */
  | { kind: 'queue'; behindClick: string }
  | { kind: 'decide' }

export function firstLook(candidate: Candidate, facts: PostbackFacts): FirstLook {
  if (facts.decided !== undefined) {
    return candidate.parkedDeadlineMs !== undefined ? { kind: 'release' } : { kind: 'replay', ...facts.decided }
  }
  if (facts.clickText !== undefined) {
    const before = parkedInOrder(facts.parkedBefore)
    if (before.length > 0) return { kind: 'defer', before }
  }
  const behindClick = facts.conversionParkedUnder.find((clickId) => clickId !== candidate.postback.click_id)
  if (candidate.parkedDeadlineMs === undefined && behindClick !== undefined) return { kind: 'queue', behindClick }
  return { kind: 'decide' }
}

/**
 * Whether a click missing from Redis must be looked up in ClickHouse: only when its ID is
 * older than the hot period. A younger click is in Redis once it arrived (its TTL there runs
 * from when it was recorded), so missing means not arrived yet.
 */
export function clickMayBeCold(verification: ClickIdVerification, nowMs: number, hotMs: number): boolean {
  return verification.valid && verification.createdAtMs <= nowMs - hotMs
}

/**
 * Whether a conversion missing from Redis may have been decided before the hot period and be
 * in ClickHouse only. Without a txn_id its identity names its click, and no postback can name
 * a click before the click ID existed: a young valid click ID rules it out. A txn_id identity
 * can span click IDs, and an invalid click ID carries no time, so those are always looked up.
 */
export function conversionMayBeCold(postback: PostbackV1, verification: ClickIdVerification, nowMs: number, hotMs: number): boolean {
  if (postback.txn_id !== '' || !verification.valid) return true
  return verification.createdAtMs <= nowMs - hotMs
}

/** The conversion identity of a postback, judged by the rules of its click's campaign. */
export function identityOf(postback: PostbackV1, click: ClickState | undefined, campaignOf: (id: string) => Campaign | undefined): string {
  const rules = eventRulesFor(click && campaignOf(click.campaignId), click, postback.event)
  return conversionIdentity(postback, rules.repeatable)
}

/**
 * Every identity a postback's conversion may have, whatever its click's campaign says: only
 * `repeatable` varies, so at most two. Lets the conversions be read before the click is known.
 */
export function possibleIdentities(postback: PostbackV1): string[] {
  const single = conversionIdentity(postback, false)
  const repeatable = conversionIdentity(postback, true)
  return single === repeatable ? [single] : [single, repeatable]
}

export interface PlanFacts {
  candidate: Candidate
  verification: ClickIdVerification
  conversionId: string
  /** The click from whichever tier holds it. */
  click: ClickState | undefined
  /** The conversion so far from whichever tier holds it, and which. */
  previous: { conversion: ConversionSoFar; tier: 'hot' | 'cold' } | undefined
  campaignOf: (id: string) => Campaign | undefined
  longestWindowSeconds: number
  graceMs: number
  nowMs: number
}

export type Plan =
  /** Park until the click arrives or the grace period ends. */
  | { kind: 'park'; deadlineMs: number }
  /** Parked and still within its grace: nothing to do yet. */
  | { kind: 'wait' }
  | {
      kind: 'commit'
      expectedVersion: number
      coldVersion: number
      /** 0 = a duplicate. */
      newVersion: number
      outcome: OutcomeV1 | undefined
      outcomeJson: string
      statusUpdate: boolean
    }

export function planDecision(facts: PlanFacts): Plan {
  const { candidate, verification, click, nowMs } = facts
  const { postback } = candidate
  const previous = facts.previous?.conversion
  const overdue = candidate.parkedDeadlineMs !== undefined && nowMs > candidate.parkedDeadlineMs

  let noClickReason: 'unknown_click' | 'invalid_click_id' | 'expired' | undefined
  let joinClick = click
  if (previous === undefined) {
    if (!verification.valid) noClickReason = 'invalid_click_id'
    else if (overdue) {
      joinClick = undefined
      noClickReason = 'unknown_click'
    } else if (click === undefined) {
      // In neither tier. A click ID older than every window will never find its click.
      if (outlivedEveryWindow(verification.createdAtMs, postback.conversion_ts, facts.longestWindowSeconds)) {
        noClickReason = 'expired'
      } else if (candidate.parkedDeadlineMs === undefined) {
        return { kind: 'park', deadlineMs: nowMs + facts.graceMs }
      } else {
        return { kind: 'wait' }
      }
    }
  }

  // A status update is judged by the rules of the conversion's own campaign.
  const campaignId = previous?.outcome.campaign_id ?? joinClick?.campaignId
  const rules = eventRulesFor(campaignId ? facts.campaignOf(campaignId) : undefined, joinClick, postback.event)
  const decision = decideConversion({
    postback,
    conversionId: facts.conversionId,
    rules,
    previous,
    click: joinClick,
    ...(noClickReason ? { noClickReason } : {}),
    nowMs,
  })
  const expectedVersion = previous?.version ?? 0
  const coldVersion = facts.previous?.tier === 'cold' ? facts.previous.conversion.version : 0
  if (decision.kind === 'duplicate') return { kind: 'commit', expectedVersion, coldVersion, newVersion: 0, outcome: undefined, outcomeJson: '', statusUpdate: false }
  return {
    kind: 'commit',
    expectedVersion,
    coldVersion,
    newVersion: decision.outcome.version,
    outcome: decision.outcome,
    outcomeJson: encodeEventText(outcomeV1Contract, decision.outcome),
    statusUpdate: decision.kind === 'status_update',
  }
}
