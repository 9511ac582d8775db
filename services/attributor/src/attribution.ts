import { longestWindow, type ConfigStore } from '@clickjoin/campaigns'
import { verifyClickId, type ClickIdKeyring } from '@clickjoin/click-id'
import { conversionPartitionKey } from '@clickjoin/contracts'
import type { ColdTier } from './cold-tier.ts'
import type { AttributorMetrics } from './metrics.ts'
import type { OutboxEntry } from './outbox.ts'
import {
  clickMayBeCold,
  conversionMayBeCold,
  firstLook,
  identityOf,
  planDecision,
  possibleIdentities,
  type Candidate,
  type Plan,
  type PlanFacts,
} from './planning.ts'
import { decodeClickState } from './redis-state.ts'
import type { ClickState, ConversionSoFar } from './rules.ts'
import { isOutboxEntryId, type AttributorStore, type PostbackFacts, type StoreWrite } from './store.ts'

export interface ConversionAttributorDeps {
  store: AttributorStore
  cold: ColdTier
  campaigns: Pick<ConfigStore, 'campaign' | 'campaigns'>
  keyring: ClickIdKeyring
  metrics: AttributorMetrics
}

export interface ConversionAttributorSettings {
  graceMs: number
  /** Clicks and conversions younger than this are in Redis; older ones may be in ClickHouse only. */
  hotMs: number
}

export interface ConversionAttributor {
  /**
   * Decides postbacks in order and appends their outcomes to the outboxes of their
   * conversions' shards; returns what was appended, for the caller to publish.
   */
  attribute(candidates: Candidate[]): Promise<OutboxEntry[]>
  /**
   * The same for a long list, in rounds of `roundSize`, handing each round's appended outcomes
   * to `decided` before the next round is written. Each round's Redis read is sent right
   * behind the previous round's write (see `RoundRead`).
   */
  attributeInRounds(candidates: Candidate[], roundSize: number, decided: (appended: OutboxEntry[]) => Promise<void>): Promise<void>
}

/**
 * A round's reads, under way: its postbacks' facts from Redis and the early cold lookup. Sent
 * right behind the previous round's write on the same connections, Redis runs the read after
 * that write (one connection per node executes in order), so it sees the write's decisions, and
 * both replies wait for the same fsync: one round trip per round instead of two. Only behind
 * a write done in one step (no parking, no release of a parked copy). A script
 * reloaded after NOSCRIPT runs late, behind the read: that read is dropped and made again. (A
 * stale read would still be safe: it loses the compare-and-set and its postbacks are decided
 * again, as with any concurrent decider; it is only slow.)
 */
interface RoundRead {
  nowMs: number
  verified: ReturnType<typeof verifyClickId>[]
  facts: Promise<PostbackFacts[]>
  early: Promise<{ asked: Set<string>; found: Map<string, ConversionSoFar> } | undefined>
}

const MAX_ATTEMPTS = 50

/** Parked postbacks of a txn_id conversion are indexed by its partition key; others need none. */
function parkedConversionOf(candidate: Candidate): string | undefined {
  return candidate.postback.txn_id === '' ? undefined : conversionPartitionKey(candidate.postback)
}

/**
 * The join: gathers each postback's facts from Redis (hot) and ClickHouse (cold), lets
 * planning.ts and rules.ts decide, and makes the decisions stick by compare-and-set.
 */
export function createConversionAttributor(deps: ConversionAttributorDeps, settings: ConversionAttributorSettings): ConversionAttributor {
  const { store, cold, campaigns, keyring, metrics } = deps
  const campaignOf = (id: string) => campaigns.campaign(id)

  function longestConfiguredWindowSeconds(): number {
    return Math.max(0, ...campaigns.campaigns().map(longestWindow))
  }

  /**
   * Independent postbacks go through together, one pipelined round trip per step; the few that
   * lose a compare-and-set race are decided again one by one, in order, so a pending → approved
   * pair in one batch lands as version 1 then 2. A later postback of a conversion that already
   * has one in the round is carried to the next round, whole rounds again, not one by one.
   */
  async function attribute(candidates: Candidate[]): Promise<OutboxEntry[]> {
    // One round of them all, then the rounds of what each carries.
    const appended: OutboxEntry[] = []
    await attributeInRounds(candidates, Infinity, async (entries) => void appended.push(...entries))
    return appended
  }

  async function attributeInRounds(candidates: Candidate[], roundSize: number, decided: (appended: OutboxEntry[]) => Promise<void>): Promise<void> {
    let read: RoundRead | undefined
    let carried: Candidate[] = []
    for (let i = 0; i < candidates.length || carried.length > 0; ) {
      const round = [...carried, ...candidates.slice(i, i + roundSize)]
      i += roundSize
      const appended: OutboxEntry[] = []
      const result = await decideRound(round, appended, read ?? readRound(round), candidates.slice(i, i + roundSize))
      carried = result.carried
      // Postbacks decided again one by one write after the next round's read: it is stale, read again.
      read = result.losers.length === 0 ? result.nextRead : undefined
      await decideOneByOne(result.losers, appended)
      await decided(appended)
    }
  }

  /** The losers of a round, each decided alone, in order, until its decision sticks. */
  async function decideOneByOne(queue: Candidate[], appended: OutboxEntry[]): Promise<void> {
    const attempts = new Map<string, number>()
    while (queue.length > 0) {
      const candidate = queue.shift()!
      const id = candidate.postback.postback_id
      const attempt = (attempts.get(id) ?? 0) + 1
      if (attempt > MAX_ATTEMPTS) throw new Error(`postback ${id}: no stable decision after ${MAX_ATTEMPTS} attempts`)
      attempts.set(id, attempt)
      // One postback: nothing to carry.
      queue.unshift(...(await decideRound([candidate], appended, readRound([candidate]))).losers)
    }
  }

  function readRound(candidates: readonly Candidate[]): RoundRead {
    const nowMs = Date.now()
    const verified = candidates.map((c) => verifyClickId(keyring, c.postback.click_id))
    const early = earlyColdConversions(candidates, verified, nowMs)
    const facts = store.readPostbacks(
      candidates.map((c, i) => ({
        postbackId: c.postback.postback_id,
        partitionKey: conversionPartitionKey(c.postback),
        clickId: verified[i]!.valid ? c.postback.click_id : undefined,
        withParked: c.parkedDeadlineMs === undefined,
        parkedConversion: parkedConversionOf(c),
        conversionIds: possibleIdentities(c.postback),
      })),
    )
    // A read that is never used (the round before it failed, or had losers) must not become an
    // unhandled rejection; whoever uses it still gets its error.
    facts.catch(() => undefined)
    return { nowMs, verified, facts, early }
  }

  /**
   * One optimistic pass: read (`read`, already under way), plan, commit. Returns what must be
   * decided again, in order: the losers, each preceded by the parked postbacks of its click
   * that it must not overtake; the postbacks `carried` to the next round, which must come
   * before `next` there (later postbacks of conversions that had one in this round); and, when
   * there is a next round, its read (of `carried` and `next`), sent right behind this round's
   * write.
   */
  async function decideRound(
    candidates: Candidate[],
    appended: OutboxEntry[],
    read: RoundRead,
    next: Candidate[] = [],
  ): Promise<{ losers: Candidate[]; carried: Candidate[]; nextRead: RoundRead | undefined }> {
    const { nowMs, verified, early } = read
    const facts = await read.facts

    interface Pending {
      candidate: Candidate
      verification: (typeof verified)[number]
      click: ClickState | undefined
      /** The conversions it may belong to as Redis had them (read with the postback's facts). */
      hotConversions: Map<string, ConversionSoFar | undefined>
    }
    const replays: { partitionKey: string; conversionId: string; version: number; clickId: string }[] = []
    const releases: StoreWrite[] = []
    const deferred: Candidate[] = []
    const pending: Pending[] = []
    const queued: { candidate: Candidate; behindClick: string }[] = []
    // A later postback of a txn_id conversion that already has one in this round waits for the
    // next round: only then can it see whether the earlier one got parked (and queue behind it).
    const conversionsInRound = new Set<string>()
    const nextRound: Candidate[] = []
    candidates.forEach((candidate, i) => {
      const parkedConversion = candidate.parkedDeadlineMs === undefined ? parkedConversionOf(candidate) : undefined
      if (parkedConversion !== undefined) {
        if (conversionsInRound.has(parkedConversion)) {
          nextRound.push(candidate)
          return
        }
        conversionsInRound.add(parkedConversion)
      }
      const look = firstLook(candidate, facts[i]!)
      if (look.kind === 'replay') replays.push({ ...look, partitionKey: conversionPartitionKey(candidate.postback), clickId: candidate.postback.click_id })
      else if (look.kind === 'release') {
        releases.push({
          kind: 'release',
          partitionKey: conversionPartitionKey(candidate.postback),
          postbackId: candidate.postback.postback_id,
          parkedUnder: candidate.parkedUnder ?? candidate.postback.click_id,
          parkedConversion: parkedConversionOf(candidate),
        })
      } else if (look.kind === 'defer') deferred.push(...look.before, candidate)
      else if (look.kind === 'queue') queued.push({ candidate, behindClick: look.behindClick })
      else {
        const verification = verified[i]!
        const clickText = facts[i]!.clickText
        const createdAt = verification.valid ? verification.createdAtMs : undefined
        const click = clickText === undefined ? undefined : decodeClickState(candidate.postback.click_id, clickText, createdAt)
        pending.push({ candidate, verification, click, hotConversions: facts[i]!.conversions })
      }
    })

    // Clicks older than the hot period and conversions that may have left Redis come from
    // ClickHouse, each kind in one query for the round, both at once. A conversion's identity
    // depends on its click's campaign; while the click is still being looked up, both
    // identities it may have are asked for.
    const coldClickIds = new Map<string, number>()
    const coldConversionIds = new Set<string>()
    for (const p of pending) {
      const { postback } = p.candidate
      const { verification } = p
      const clickIsCold = p.click === undefined && verification.valid && clickMayBeCold(verification, nowMs, settings.hotMs)
      if (clickIsCold && verification.valid) coldClickIds.set(postback.click_id, verification.createdAtMs)
      if (!conversionMayBeCold(postback, p.verification, nowMs, settings.hotMs)) continue
      const ids = clickIsCold ? [...p.hotConversions.keys()] : [identityOf(postback, p.click, campaignOf)]
      for (const id of ids) if (p.hotConversions.get(id) === undefined) coldConversionIds.add(id)
    }
    const earlyFound = await early
    const stillCold = earlyFound ? [...coldConversionIds].filter((id) => !earlyFound.asked.has(id)) : [...coldConversionIds]
    const [coldClicks, lateConversions] = await Promise.all([
      coldClickIds.size > 0
        ? timedCold('cold_clicks', () => cold.clicks([...coldClickIds].map(([clickId, createdAtMs]) => ({ clickId, createdAtMs }))))
        : new Map<string, ClickState>(),
      stillCold.length > 0 ? timedCold('cold_conversions', () => cold.conversions(stillCold)) : new Map<string, ConversionSoFar>(),
    ])
    const coldConversions = earlyFound ? new Map([...earlyFound.found, ...lateConversions]) : lateConversions
    for (const p of pending) p.click ??= coldClicks.get(p.candidate.postback.click_id)

    const conversionIds = pending.map((p) => identityOf(p.candidate.postback, p.click, campaignOf))
    // possibleIdentities covers every identity identityOf can give, so this reads nothing in practice.
    const unread = pending.flatMap((p, i) => (p.hotConversions.has(conversionIds[i]!) ? [] : [i]))
    if (unread.length > 0) {
      const late = await store.readConversions(
        unread.map((i) => ({ partitionKey: conversionPartitionKey(pending[i]!.candidate.postback), conversionId: conversionIds[i]! })),
      )
      unread.forEach((i, j) => pending[i]!.hotConversions.set(conversionIds[i]!, late[j]))
    }
    const hot = pending.map((p, i) => p.hotConversions.get(conversionIds[i]!))

    const writes: StoreWrite[] = []
    const planned: { candidate: Candidate; plan: Exclude<Plan, { kind: 'wait' }> }[] = []
    const longestWindowSeconds = longestConfiguredWindowSeconds()
    pending.forEach((p, i) => {
      const conversionId = conversionIds[i]!
      const hotPrevious = hot[i]
      const coldPrevious = coldConversions.get(conversionId)
      const planFacts: PlanFacts = {
        candidate: p.candidate,
        verification: p.verification,
        conversionId,
        click: p.click,
        previous: hotPrevious
          ? { conversion: hotPrevious, tier: 'hot' }
          : coldPrevious
            ? { conversion: coldPrevious, tier: 'cold' }
            : undefined,
        campaignOf,
        longestWindowSeconds,
        graceMs: settings.graceMs,
        nowMs,
      }
      const plan = planDecision(planFacts)
      const { postback } = p.candidate
      if (plan.kind === 'wait') return
      planned.push({ candidate: p.candidate, plan })
      if (plan.kind === 'park') {
        writes.push({
          kind: 'park',
          postbackId: postback.postback_id,
          parkedUnder: postback.click_id,
          parkedConversion: parkedConversionOf(p.candidate),
          deadlineMs: plan.deadlineMs,
          offset: p.candidate.offset,
          json: p.candidate.json,
        })
        return
      }
      writes.push({
        kind: 'commit',
        partitionKey: conversionPartitionKey(postback),
        conversionId,
        postbackId: postback.postback_id,
        clickId: postback.click_id,
        expectedVersion: plan.expectedVersion,
        coldVersion: plan.coldVersion,
        newVersion: plan.newVersion,
        outcomeJson: plan.outcomeJson,
        parkedUnder: p.candidate.parkedDeadlineMs === undefined ? undefined : (p.candidate.parkedUnder ?? postback.click_id),
        parkedConversion: parkedConversionOf(p.candidate),
      })
    })
    // Behind earlier parked postbacks of the same conversion: parked under their click.
    for (const { candidate, behindClick } of queued) {
      const deadlineMs = nowMs + settings.graceMs
      planned.push({ candidate, plan: { kind: 'park', deadlineMs } })
      writes.push({
        kind: 'park',
        postbackId: candidate.postback.postback_id,
        parkedUnder: behindClick,
        parkedConversion: parkedConversionOf(candidate),
        deadlineMs,
        offset: candidate.offset,
        json: candidate.json,
      })
    }

    const reloads = store.scriptReloads()
    const writing = store.write([...writes, ...releases])
    // Only behind a write done in one step: parking (the txn_id index) and releasing a parked
    // copy take a second step in another shard after the first one's replies, which a read sent
    // now would not see (a later postback of a parked conversion must queue behind it).
    const oneStep = releases.length === 0 && writes.every((w) => w.kind === 'commit' && w.parkedUnder === undefined)
    const upcoming = nextRound.length > 0 ? [...nextRound, ...next] : next
    let nextRead = upcoming.length > 0 && oneStep ? readRound(upcoming) : undefined
    const results = await writing
    // A script reloaded meanwhile (NOSCRIPT: a fresh or restarted Redis) ran after the next
    // round's read, which then need not see this write: read again.
    if (store.scriptReloads() !== reloads) nextRead = undefined
    const losers: Candidate[] = [...deferred]
    planned.forEach(({ candidate, plan }, i) => {
      const result = results[i]!
      if (plan.kind === 'park') {
        if (result === 'ok') metrics.parked.inc()
        else losers.push(candidate) // the click arrived, or it was decided meanwhile
        return
      }
      if (result === 'ok') metrics.duplicates.inc()
      else if (isOutboxEntryId(result)) {
        if (plan.outcome) {
          appended.push({ outbox: store.keys.outboxOf(conversionPartitionKey(candidate.postback)), id: result, key: plan.outcome.click_id, value: plan.outcomeJson })
          metrics.decisions.inc({
            kind: plan.statusUpdate ? 'status_update' : 'new',
            outcome: plan.outcome.outcome,
            reason: plan.outcome.reason || 'none',
          })
        }
      } else if (result === 'conflict' || (result === 'decided' && candidate.parkedDeadlineMs === undefined)) {
        losers.push(candidate)
      }
      // A parked copy that was 'decided': another path decided and published it; write() released it.
    })
    // In arrival order, so a conversion's postbacks keep theirs.
    const order = new Map(candidates.map((c, i) => [c, i]))
    const [first, rest] = [losers.slice(0, deferred.length), losers.slice(deferred.length)]
    losers.length = 0
    losers.push(...first, ...rest.sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0)))

    if (replays.length > 0) appended.push(...(await replayDecisions(replays)))
    return { losers, carried: nextRound, nextRead }
  }

  /** Re-appends the stored outcome of each already-decided postback to the outbox, byte-identical. */
  async function replayDecisions(
    replays: { partitionKey: string; conversionId: string; version: number; clickId: string }[],
  ): Promise<OutboxEntry[]> {
    const withOutcome = replays.filter((r) => r.version > 0)
    const stored = await store.readOutcomes(withOutcome)
    const entries: { partitionKey: string; key: string; value: string }[] = []
    withOutcome.forEach((r, i) => {
      const json = stored[i]
      if (json !== undefined) entries.push({ partitionKey: r.partitionKey, key: r.clickId, value: json }) // else it left the hot tier: published long ago
    })
    if (entries.length === 0) return []
    const appended = await store.appendToOutbox(entries)
    metrics.replays.inc(entries.length)
    return appended
  }

  /**
   * The cold conversions a round will ask for whatever Redis says, looked up while Redis is
   * read: a txn_id identity does not depend on the click, and one that may be older than the hot
   * period is asked for unless Redis has it (most new conversions). Those Redis has are asked for
   * needlessly, which costs ClickHouse a little and saves the round a sequential lookup. A failure
   * is not the round's: it asks again for what it needs after the read, and fails then if
   * ClickHouse is still unreachable (hot duplicates need no ClickHouse at all).
   */
  async function earlyColdConversions(
    candidates: readonly Candidate[],
    verified: readonly ReturnType<typeof verifyClickId>[],
    nowMs: number,
  ): Promise<{ asked: Set<string>; found: Map<string, ConversionSoFar> } | undefined> {
    const asked = new Set<string>()
    candidates.forEach(({ postback }, i) => {
      if (postback.txn_id !== '' && conversionMayBeCold(postback, verified[i]!, nowMs, settings.hotMs)) {
        for (const id of possibleIdentities(postback)) asked.add(id)
      }
    })
    if (asked.size === 0) return undefined
    try {
      return { asked, found: await timedCold('cold_conversions', () => cold.conversions([...asked])) }
    } catch {
      return undefined
    }
  }

  async function timedCold<T>(op: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await work()
    } catch (err) {
      metrics.coldErrors.inc()
      throw new Error(`ClickHouse lookup failed (the batch is retried, nothing decided): ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      })
    } finally {
      metrics.coldSeconds.observe({ op }, (performance.now() - started) / 1000)
    }
  }

  return { attribute, attributeInRounds }
}
