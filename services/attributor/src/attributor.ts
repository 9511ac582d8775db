import type { Redis } from 'ioredis'
import { longestWindow, type ConfigStore } from '@clickjoin/campaigns'
import { verifyClickId, type ClickIdKeyring } from '@clickjoin/click-id'
import {
  clickV1Contract,
  deadLetterMessage,
  decodeEvent,
  encodeEvent,
  outcomeV1Contract,
  postbackV1Contract,
  type ClickV1,
  type OutcomeV1,
  type PostbackV1,
  type TopicNames,
} from '@clickjoin/contracts'
import {
  createBatchConsumer,
  ensureTopics,
  type BatchConsumer,
  type EventProducer,
  type Kafka,
  type KafkaMessage,
  type PartitionBatch,
} from '@clickjoin/kafka'
import type { AttributorMetrics } from './metrics.ts'
import { createOutboxPublisher, type OutboxEntry } from './outbox.ts'
import {
  attributorKeys,
  clickTtlSeconds,
  decodeClickState,
  defineAttributorScripts,
  dueMember,
  encodeClickState,
  execPipeline,
  formatParked,
  isOutboxEntryId,
  parseDueMember,
  parseParked,
  parsePostbackRecord,
  type CommitResult,
  type ParkResult,
} from './redis-state.ts'
import {
  conversionIdentity,
  decideConversion,
  eventRulesFor,
  outlivedEveryWindow,
  type ClickState,
  type ConversionSoFar,
} from './rules.ts'

export interface Log {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export interface AttributorDeps {
  kafka: Kafka
  /** Commands only (no subscriptions); the Lua scripts are defined on it. */
  redis: Redis
  producer: EventProducer
  campaigns: Pick<ConfigStore, 'campaign' | 'campaigns'>
  keyring: ClickIdKeyring
  metrics: AttributorMetrics
  log: Log
}

export interface AttributorSettings {
  topics: TopicNames
  /** Partition count of clicks and conversions (and thus the number of partition outboxes). */
  partitions: number
  redisKeyPrefix: string
  groupId: string
  /** How long a conversion waits for a click that has not arrived yet. */
  graceMs: number
  sweepIntervalMs: number
  /** How long a decided conversion is remembered for deduplication and status updates. */
  conversionTtlSeconds: number
  /** Kept beyond a click's longest window (skew, grace, late postbacks). */
  clickTtlMarginSeconds: number
  partitionsConsumedConcurrently: number
  sessionTimeoutMs?: number
}

export interface Attributor {
  readonly id: string
  start(): Promise<void>
  /** Stops consuming and sweeping; what was decided is in Redis or Kafka already. */
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
  /** One sweep of overdue parked postbacks (the timer calls it too). */
  sweepOverdue(): Promise<number>
}

/** A postback to decide: fresh from the topic, or taken back out of the parked set. */
interface Candidate {
  postback: PostbackV1
  json: string
  /** Kafka offset in the conversions partition: the order postbacks of one click arrived in. */
  offset: string
  parkedDeadlineMs: number | undefined
}

/** Parked postbacks in the order they must be decided: by deadline, then arrival. */
function parkedInOrder(stored: Iterable<string>): Candidate[] {
  const candidates: Candidate[] = []
  for (const value of stored) {
    const { deadlineMs, offset, json } = parseParked(value)
    const decoded = decodeEvent(postbackV1Contract, json)
    if (decoded.ok) candidates.push({ postback: decoded.value, json, offset, parkedDeadlineMs: deadlineMs })
  }
  return candidates.sort(
    (a, b) => a.parkedDeadlineMs! - b.parkedDeadlineMs! || Number(BigInt(a.offset) - BigInt(b.offset)),
  )
}

const MAX_ATTEMPTS = 50
/** An outbox entry this old is no longer being published by the member that wrote it. */
const ABANDONED_AFTER_MS = 10_000

export function createAttributor(deps: AttributorDeps, settings: AttributorSettings): Attributor {
  const { redis, producer, campaigns, keyring, metrics, log } = deps
  const keys = attributorKeys(settings.redisKeyPrefix)
  const topics = settings.topics
  const outbox = createOutboxPublisher({ redis, producer, outcomesTopic: topics.outcomes, metrics })
  defineAttributorScripts(redis)

  let consumer: BatchConsumer | undefined
  let sweepTimer: NodeJS.Timeout | undefined
  let gaugeTimer: NodeJS.Timeout | undefined
  let sweeping: Promise<unknown> = Promise.resolve()
  let lastSweepError: string | undefined
  let stopped = false
  const admin = deps.kafka.admin()

  async function timed<T>(op: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await work()
    } finally {
      metrics.redisSeconds.observe({ op }, (performance.now() - started) / 1000)
    }
  }

  function longestConfiguredWindowSeconds(): number {
    return Math.max(0, ...campaigns.campaigns().map(longestWindow))
  }

  /**
   * Decides postbacks in order. Independent ones go through together, one pipelined round trip
   * per step; the few that lose a compare-and-set race are decided again one by one, in order,
   * so a pending → approved pair in one batch lands as version 1 then 2.
   */
  async function attributeConversions(candidates: Candidate[], outboxKey: string): Promise<OutboxEntry[]> {
    const appended: OutboxEntry[] = []
    if (candidates.length === 0) return appended
    const queue = await decideRound(candidates, outboxKey, appended)
    const attempts = new Map<string, number>()
    while (queue.length > 0) {
      const candidate = queue.shift()!
      const id = candidate.postback.postback_id
      const attempt = (attempts.get(id) ?? 0) + 1
      if (attempt > MAX_ATTEMPTS) throw new Error(`postback ${id}: no stable decision after ${MAX_ATTEMPTS} attempts`)
      attempts.set(id, attempt)
      queue.unshift(...(await decideRound([candidate], outboxKey, appended)))
    }
    return appended
  }

  /**
   * One optimistic pass: read, decide in rules.ts, commit by compare-and-set. Returns what must
   * be decided again, in order: the losers, each preceded by the parked postbacks of its click
   * that it must not overtake (a fresh "approved" arriving while the click handler is still
   * deciding the parked "pending" of the same conversion).
   */
  async function decideRound(candidates: Candidate[], outboxKey: string, appended: OutboxEntry[]): Promise<Candidate[]> {
    const nowMs = Date.now()
    const verified = candidates.map((c) => verifyClickId(keyring, c.postback.click_id))

    const firstReads = await timed('read_postbacks', () => {
      const pipeline = redis.pipeline()
      candidates.forEach((c, i) => {
        pipeline.get(keys.postback(c.postback.postback_id))
        if (verified[i]!.valid) pipeline.get(keys.click(c.postback.click_id))
        else pipeline.echo('')
        if (verified[i]!.valid && c.parkedDeadlineMs === undefined) pipeline.hvals(keys.parked(c.postback.click_id))
        else pipeline.echo('')
      })
      return execPipeline(pipeline)
    })

    interface Facts {
      candidate: Candidate
      click: ClickState | undefined
      conversionId: string
    }
    const replays: { conversionId: string; version: number; clickId: string }[] = []
    const toDecide: Facts[] = []
    const releases: Candidate[] = []
    const deferred: Candidate[] = []
    candidates.forEach((candidate, i) => {
      const record = firstReads[3 * i] as string | null
      const clickText = firstReads[3 * i + 1] as string | null
      const parkedBefore = firstReads[3 * i + 2]
      if (record !== null) {
        // Already decided: a redelivery republishes that decision. A parked copy of it is
        // only released (the path that decided it published it).
        if (candidate.parkedDeadlineMs !== undefined) releases.push(candidate)
        else replays.push({ ...parsePostbackRecord(record), clickId: candidate.postback.click_id })
        return
      }
      const waitingBefore = clickText && Array.isArray(parkedBefore) ? parkedInOrder(parkedBefore as string[]) : []
      if (waitingBefore.length > 0) {
        // The click is here but earlier postbacks of it still wait: decide those first.
        deferred.push(...waitingBefore, candidate)
        return
      }
      const verification = verified[i]!
      const createdAt = verification.valid ? verification.createdAtMs : undefined
      const click = clickText ? decodeClickState(candidate.postback.click_id, clickText, createdAt) : undefined
      const rules = eventRulesFor(click && campaigns.campaign(click.campaignId), click, candidate.postback.event)
      toDecide.push({ candidate, click, conversionId: conversionIdentity(candidate.postback, rules.repeatable) })
    })

    const conversions = await timed('read_conversions', () => {
      const pipeline = redis.pipeline()
      for (const f of toDecide) pipeline.cjReadConversion(keys.conversion(f.conversionId))
      return execPipeline(pipeline)
    })

    const writes = redis.pipeline()
    const writeKinds: { facts: Facts; kind: 'commit' | 'park'; outcome?: OutcomeV1; json?: string; statusUpdate?: boolean }[] = []
    toDecide.forEach((facts, i) => {
      const stored = conversions[i] as [string, string | null] | null
      const previous: ConversionSoFar | undefined =
        stored && stored[1] !== null ? { version: Number(stored[0]), outcome: JSON.parse(stored[1]) as OutcomeV1 } : undefined
      const { candidate, click } = facts
      const { postback } = candidate
      const verification = verified[candidates.indexOf(candidate)]!
      const overdue = candidate.parkedDeadlineMs !== undefined && nowMs > candidate.parkedDeadlineMs

      let noClickReason: 'unknown_click' | 'invalid_click_id' | 'expired' | undefined
      let joinClick = click
      if (previous === undefined) {
        if (!verification.valid) noClickReason = 'invalid_click_id'
        else if (overdue) {
          joinClick = undefined
          noClickReason = 'unknown_click'
        } else if (click === undefined) {
          if (outlivedEveryWindow(verification.createdAtMs, postback.conversion_ts, longestConfiguredWindowSeconds())) {
            noClickReason = 'expired'
          } else if (candidate.parkedDeadlineMs === undefined) {
            writeKinds.push({ facts, kind: 'park' })
            const deadline = nowMs + settings.graceMs
            writes.cjParkPostback(
              keys.click(postback.click_id),
              keys.postback(postback.postback_id),
              keys.parked(postback.click_id),
              keys.due,
              postback.postback_id,
              deadline,
              formatParked(deadline, candidate.offset, candidate.json),
              dueMember(postback.click_id, postback.postback_id),
            )
            return
          } else {
            return // parked and still within its grace: keep waiting
          }
        }
      }

      // A status update is judged by the rules of the conversion's own campaign.
      const campaignId = previous?.outcome.campaign_id ?? joinClick?.campaignId
      const rules = eventRulesFor(campaignId ? campaigns.campaign(campaignId) : undefined, joinClick, postback.event)
      const decision = decideConversion({
        postback,
        conversionId: facts.conversionId,
        rules,
        previous,
        click: joinClick,
        ...(noClickReason ? { noClickReason } : {}),
        nowMs,
      })
      const newVersion = decision.kind === 'duplicate' ? 0 : decision.outcome.version
      const json = decision.kind === 'duplicate' ? '' : encodeEvent(outcomeV1Contract, decision.outcome).toString('utf8')
      writeKinds.push({
        facts,
        kind: 'commit',
        ...(decision.kind === 'duplicate'
          ? {}
          : { outcome: decision.outcome, json, statusUpdate: decision.kind === 'status_update' }),
      })
      writes.cjCommitDecision(
        keys.conversion(facts.conversionId),
        keys.postback(postback.postback_id),
        outboxKey,
        keys.due,
        keys.parked(postback.click_id),
        previous?.version ?? 0,
        newVersion,
        json,
        settings.conversionTtlSeconds,
        postback.click_id,
        candidate.parkedDeadlineMs === undefined ? '' : dueMember(postback.click_id, postback.postback_id),
        facts.conversionId,
      )
    })
    for (const candidate of releases) {
      const { postback } = candidate
      writes.cjCommitDecision(
        keys.conversion('-'),
        keys.postback(postback.postback_id),
        outboxKey,
        keys.due,
        keys.parked(postback.click_id),
        -1, // never matches: the script only releases the parked copy and answers 'decided'
        0,
        '',
        1,
        postback.click_id,
        dueMember(postback.click_id, postback.postback_id),
        '-',
      )
    }

    const results = writeKinds.length + releases.length > 0 ? await timed('commit', () => execPipeline(writes)) : []
    const losers: Candidate[] = [...deferred]
    writeKinds.forEach((write, i) => {
      const result = results[i] as CommitResult | ParkResult
      if (write.kind === 'park') {
        if (result === 'ok') metrics.parked.inc()
        else losers.push(write.facts.candidate) // the click arrived, or it was decided meanwhile
        return
      }
      if (result === 'ok') metrics.duplicates.inc()
      else if (isOutboxEntryId(result)) {
        if (write.outcome) {
          appended.push({ id: result, key: write.outcome.click_id, value: write.json! })
          metrics.decisions.inc({
            kind: write.statusUpdate ? 'status_update' : 'new',
            outcome: write.outcome.outcome,
            reason: write.outcome.reason || 'none',
          })
        }
      } else if (result === 'conflict' || (result === 'decided' && write.facts.candidate.parkedDeadlineMs === undefined)) {
        losers.push(write.facts.candidate)
      }
      // 'claimed' / parked 'decided': another path decided and published it.
    })

    if (replays.length > 0) appended.push(...(await replayDecisions(replays, outboxKey)))
    return losers
  }

  /** Re-appends the stored outcome of each already-decided postback to the outbox, byte-identical. */
  async function replayDecisions(
    replays: { conversionId: string; version: number; clickId: string }[],
    outboxKey: string,
  ): Promise<OutboxEntry[]> {
    const withOutcome = replays.filter((r) => r.version > 0)
    if (withOutcome.length === 0) return []
    const stored = await timed('read_replays', () => {
      const pipeline = redis.pipeline()
      for (const r of withOutcome) pipeline.hget(keys.conversion(r.conversionId), `o${r.version}`)
      return execPipeline(pipeline)
    })
    const append = redis.pipeline()
    const entries: Omit<OutboxEntry, 'id'>[] = []
    withOutcome.forEach((r, i) => {
      const json = stored[i] as string | null
      if (json === null) return // the conversion outlived its TTL: nothing left to repeat
      append.xadd(outboxKey, '*', 'k', r.clickId, 'v', json)
      entries.push({ key: r.clickId, value: json })
    })
    if (entries.length === 0) return []
    const ids = await timed('replay', () => execPipeline(append))
    metrics.replays.inc(entries.length)
    return entries.map((e, i) => ({ ...e, id: ids[i] as string }))
  }

  async function sendDeadLetters(
    batch: PartitionBatch,
    failures: { message: KafkaMessage; reason: string }[],
  ): Promise<void> {
    if (failures.length === 0) return
    await Promise.all(
      failures.map(({ message, reason }) => {
        log.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason }, 'dead-lettered message')
        return producer.send(
          topics.deadLetter,
          deadLetterMessage({
            sourceTopic: batch.topic,
            partition: batch.partition,
            offset: message.offset,
            key: message.key,
            value: message.value,
            reason,
          }),
        )
      }),
    )
    metrics.deadLetters.inc({ topic: batch.topic }, failures.length)
  }

  async function attributeConversionBatch(batch: PartitionBatch): Promise<void> {
    const failures: { message: KafkaMessage; reason: string }[] = []
    const candidates: Candidate[] = []
    for (const message of batch.messages) {
      const decoded = decodeEvent(postbackV1Contract, message.value)
      if (!decoded.ok) failures.push({ message, reason: decoded.reason })
      else {
        candidates.push({
          postback: decoded.value,
          json: message.value!.toString('utf8'),
          offset: message.offset,
          parkedDeadlineMs: undefined,
        })
      }
    }
    await sendDeadLetters(batch, failures)
    const outboxKey = keys.outbox(batch.partition)
    await outbox.publish(outboxKey, await attributeConversions(candidates, outboxKey))
  }

  /** Records clicks, then decides the postbacks that were waiting for them. */
  async function recordClickBatch(batch: PartitionBatch): Promise<void> {
    const failures: { message: KafkaMessage; reason: string }[] = []
    const clicks: ClickV1[] = []
    for (const message of batch.messages) {
      const decoded = decodeEvent(clickV1Contract, message.value)
      if (!decoded.ok) failures.push({ message, reason: decoded.reason })
      else clicks.push(decoded.value)
    }
    await sendDeadLetters(batch, failures)
    if (clicks.length === 0) return
    const nowMs = Date.now()
    const replies = await timed('record_clicks', () => {
      const pipeline = redis.pipeline()
      for (const click of clicks) {
        const verification = verifyClickId(keyring, click.click_id)
        pipeline.set(
          keys.click(click.click_id),
          encodeClickState(click, verification.valid ? verification.createdAtMs : undefined),
          'EX',
          clickTtlSeconds(click, nowMs, settings.clickTtlMarginSeconds),
        )
        pipeline.hgetall(keys.parked(click.click_id))
      }
      return execPipeline(pipeline)
    })
    metrics.clicks.inc(clicks.length)
    const waiting: Candidate[] = []
    clicks.forEach((_, i) => {
      // In the order they were received, so a pending → approved pair stays in that order.
      waiting.push(...parkedInOrder(Object.values(replies[2 * i + 1] as Record<string, string>)))
    })
    if (waiting.length === 0) return
    const outboxKey = keys.outbox(batch.partition)
    await outbox.publish(outboxKey, await attributeConversions(waiting, outboxKey))
  }

  async function sweepOverdue(): Promise<number> {
    const due = await timed('sweep_read', () => redis.zrangebyscore(keys.due, '-inf', Date.now(), 'LIMIT', 0, 500))
    if (due.length === 0) return 0
    const members = due.map((member) => ({ member }))
    const parked = await timed('sweep_read', () => {
      const pipeline = redis.pipeline()
      for (const { member } of members) {
        const { clickId, postbackId } = parseDueMember(member)
        pipeline.hget(keys.parked(clickId), postbackId)
      }
      return execPipeline(pipeline)
    })
    const orphans: string[] = []
    const stored: string[] = []
    members.forEach(({ member }, i) => {
      const value = parked[i] as string | null
      if (value === null || !decodeEvent(postbackV1Contract, parseParked(value).json).ok) orphans.push(member)
      else stored.push(value)
    })
    const candidates = parkedInOrder(stored)
    if (orphans.length > 0) {
      log.error({ orphans: orphans.length }, 'parked entries without a readable postback; removing them')
      await redis.zrem(keys.due, ...orphans)
    }
    const outboxKey = keys.outbox('sweeper')
    await outbox.publish(outboxKey, await attributeConversions(candidates, outboxKey))
    return candidates.length
  }

  /**
   * Leftovers of a member that crashed between its Lua step and the Kafka ack. Only entries
   * older than ABANDONED_AFTER_MS: younger ones are still being published by their writer, and
   * taking them too would only publish them twice.
   */
  async function drainAbandonedOutboxes(): Promise<void> {
    const outboxKeys = [keys.outbox('sweeper')]
    for (let p = 0; p < settings.partitions; p++) outboxKeys.push(keys.outbox(p))
    for (const key of outboxKeys) await outbox.drain(key, { olderThanMs: ABANDONED_AFTER_MS })
  }

  function scheduleSweep(): void {
    if (stopped) return
    sweepTimer = setTimeout(() => {
      sweeping = (async () => {
        try {
          while ((await sweepOverdue()) >= 500 && !stopped) {
            // a backlog: keep going before sleeping
          }
          await drainAbandonedOutboxes()
          lastSweepError = undefined
        } catch (err) {
          lastSweepError = err instanceof Error ? err.message : String(err)
          log.error({ err }, 'sweep failed; retrying')
        }
      })().finally(scheduleSweep)
    }, settings.sweepIntervalMs)
  }

  async function refreshGauges(): Promise<void> {
    metrics.parkedNow.set(await redis.zcard(keys.due))
    const group = await admin.fetchOffsets({ groupId: settings.groupId, topics: [topics.clicks, topics.conversions] })
    for (const { topic, partitions } of group) {
      const ends = await admin.fetchTopicOffsets(topic)
      for (const end of ends) {
        const committed = partitions.find((p) => p.partition === end.partition)?.offset ?? '-1'
        const from = committed === '-1' ? BigInt(end.low) : BigInt(committed)
        metrics.consumerLag.set({ topic, partition: String(end.partition) }, Number(BigInt(end.high) - from))
      }
    }
  }

  return {
    id: 'attributor',
    async start() {
      await ensureTopics(deps.kafka, [
        topics.clicks,
        topics.conversions,
        topics.outcomes,
        topics.deadLetter,
      ].map((topic) => ({ topic, numPartitions: settings.partitions })))
      await admin.connect()
      consumer = createBatchConsumer(deps.kafka, {
        groupId: settings.groupId,
        topics: [topics.clicks, topics.conversions],
        fromBeginning: true,
        partitionsConsumedConcurrently: settings.partitionsConsumedConcurrently,
        ...(settings.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: settings.sessionTimeoutMs }),
        handleBatch: (batch) =>
          batch.topic === topics.clicks ? recordClickBatch(batch) : attributeConversionBatch(batch),
      })
      await consumer.start()
      scheduleSweep()
      gaugeTimer = setInterval(() => {
        refreshGauges().catch((err: unknown) => log.warn({ err }, 'could not refresh lag gauges'))
      }, 5_000)
      gaugeTimer.unref()
    },
    async stop() {
      stopped = true
      if (sweepTimer) clearTimeout(sweepTimer)
      if (gaugeTimer) clearInterval(gaugeTimer)
      await consumer?.stop()
      await sweeping
      await admin.disconnect()
    },
    health() {
      const consumerHealth = consumer?.health() ?? { ok: false, detail: 'not started' }
      if (!consumerHealth.ok) return consumerHealth
      if (lastSweepError) return { ok: false, detail: `sweeper: ${lastSweepError}` }
      return { ok: true, detail: consumerHealth.detail }
    },
    sweepOverdue,
  }
}
