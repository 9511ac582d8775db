import type { ChainableCommander, Redis } from 'ioredis'
import type { ClickV1, OutcomeV1 } from '@clickjoin/contracts'
import {
  attributorKeys,
  clickTtlSeconds,
  dueMember,
  encodeClickState,
  formatParked,
  parseParked,
  parsePostbackRecord,
  type AttributorKeys,
} from './redis-state.ts'
import type { ConversionSoFar } from './rules.ts'

/**
 * The attributor's Redis, typed: every read returns named fields and every Lua script takes
 * a named object, so no caller indexes `results[3 * i + 1]` or counts positional ARGV. The key
 * layout is in redis-state.ts and docs/redis.md.
 */

// ---------------------------------------------------------------------------------------------
// Scripts with named keys and arguments. The Lua body refers to them by name: a prelude binds
// `local <name> = KEYS[i]` / `ARGV[j]` in the declared order, which is also the order the
// named object is flattened in. A missing name is a type error, not a shifted argument.
// ---------------------------------------------------------------------------------------------
type Value = string | number | Buffer

interface ScriptSpec<K extends string, A extends string> {
  name: string
  keys: readonly K[]
  args: readonly A[]
  lua: string
}

function defineScript<K extends string, A extends string, R>(spec: ScriptSpec<K, A>) {
  const prelude = [
    ...spec.keys.map((k, i) => `local ${k} = KEYS[${i + 1}]`),
    ...spec.args.map((a, i) => `local ${a} = ARGV[${i + 1}]`),
  ].join('\n')
  return {
    define(redis: Redis): void {
      redis.defineCommand(spec.name, { numberOfKeys: spec.keys.length, lua: `${prelude}\n${spec.lua}` })
    },
    /** Queues the script on a pipeline; its reply is R. */
    queue(pipeline: ChainableCommander, keys: Record<K, Value>, args: Record<A, Value>): void {
      const flat = [...spec.keys.map((k) => keys[k]), ...spec.args.map((a) => args[a])]
      ;(pipeline as unknown as Record<string, (...values: Value[]) => unknown>)[spec.name]!(...flat)
    },
    reply: undefined as unknown as R,
  }
}

/**
 * A script that applies `body` to every item of a batch in one call: Redis runs it as one
 * command, so the whole batch's writes reach the append-only file with one fsync (a pipeline
 * of one script per item spans many reads of the connection, each followed by an fsync). The
 * body sees each item's keys and arguments by name and `return`s that item's reply; the
 * script returns the replies in order.
 */
function defineBatchScript<K extends string, A extends string, R>(spec: ScriptSpec<K, A>) {
  const nk = spec.keys.length
  const na = spec.args.length
  const lua = `
local replies = {}
local items = #ARGV / ${na}
for item = 0, items - 1 do
${spec.keys.map((k, i) => `  local ${k} = KEYS[item * ${nk} + ${i + 1}]`).join('\n')}
${spec.args.map((a, i) => `  local ${a} = ARGV[item * ${na} + ${i + 1}]`).join('\n')}
  replies[item + 1] = (function()
${spec.lua}
  end)()
end
return replies
`
  return {
    define(redis: Redis): void {
      redis.defineCommand(spec.name, { lua })
    },
    /** Queues one call for all items; its reply is one R per item, in order. */
    queue(pipeline: ChainableCommander, items: readonly { keys: Record<K, Value>; args: Record<A, Value> }[]): void {
      const keys = items.flatMap((item) => spec.keys.map((k) => item.keys[k]))
      const args = items.flatMap((item) => spec.args.map((a) => item.args[a]))
      // One array argument (ioredis flattens it): spreading a large batch into a call would
      // overflow the stack.
      ;(pipeline as unknown as Record<string, (values: Value[]) => unknown>)[spec.name]!([keys.length, ...keys, ...args])
    },
    reply: undefined as unknown as R[],
  }
}

/** The latest version of a conversion and its outcome, or nil. */
const readConversion = defineScript<'conversion', never, [string, string | null] | null>({
  name: 'cjReadConversion',
  keys: ['conversion'],
  args: [],
  lua: `
local n = redis.call('HGET', conversion, 'n')
if not n then return nil end
return {n, redis.call('HGET', conversion, 'o' .. n)}
`,
})

/**
 * Every write of a decision round in one call (`kind` per item):
 *
 * `commit` makes one decision stick, or refuses it, atomically (compare-and-set):
 *  - 'claimed'  the parked postback was already decided by someone else (sweeper/other member);
 *  - 'decided'  this postback_id already has a decision: the caller replays it instead;
 *  - 'conflict' the conversion changed since the caller read it: read again and decide again;
 *  - 'ok'       recorded a duplicate (postback → version 0);
 *  - <entry ID> recorded: postback → version, the conversion's new version, and the outcome
 *               appended to the outbox under this stream entry ID, all or nothing.
 * `coldVersion` is the version ClickHouse holds when Redis no longer does (0 when none): a
 * conversion absent from Redis counts as at that version, so the compare-and-set holds
 * across the tiers.
 *
 * `park` parks a postback whose click has not arrived, unless the click is there now ('click':
 * decide at once) or the postback was already decided ('decided'). Parking twice keeps the
 * first deadline. Linearizable with the click writer: either this sees the click, or the click
 * writer's read of the parked hash (after its HSET) sees this postback. For a park,
 * `conversion` is the click's bucket and `clickField` its field, `version` the deadline,
 * `outcome` the parked entry, `messageKey` the click it is parked under; a txn_id postback is
 * also indexed in `parkedIndex` (postback → that click), so later postbacks of its conversion
 * queue behind it whatever click they name. ('' = no index.)
 *
 * Items are applied in order, so a later item sees what an earlier one wrote (a pending and
 * its approval in one batch: the second gets 'conflict' and is decided again, in order).
 */
const decideBatch = defineBatchScript<
  'conversion' | 'record' | 'outbox' | 'due' | 'parked' | 'parkedIndex',
  'kind' | 'expected' | 'coldVersion' | 'version' | 'outcome' | 'ttl' | 'messageKey' | 'claim' | 'conversionId' | 'clickField',
  CommitResult | ParkResult
>({
  name: 'cjDecideBatch',
  keys: ['conversion', 'record', 'outbox', 'due', 'parked', 'parkedIndex'],
  args: ['kind', 'expected', 'coldVersion', 'version', 'outcome', 'ttl', 'messageKey', 'claim', 'conversionId', 'clickField'],
  lua: `
if kind == 'park' then
  if redis.call('HEXISTS', conversion, clickField) == 1 then return 'click' end
  if redis.call('EXISTS', record) == 1 then return 'decided' end
  if redis.call('HSETNX', parked, conversionId, outcome) == 1 then
    redis.call('ZADD', due, version, claim)
    if parkedIndex ~= '' then redis.call('HSET', parkedIndex, conversionId, messageKey) end
  end
  return 'ok'
end
if claim ~= '' and not redis.call('ZSCORE', due, claim) then return 'claimed' end
local function release()
  if claim ~= '' then
    local postbackId = string.sub(claim, string.find(claim, ':', 1, true) + 1)
    redis.call('ZREM', due, claim)
    redis.call('HDEL', parked, postbackId)
    if parkedIndex ~= '' then redis.call('HDEL', parkedIndex, postbackId) end
  end
end
if redis.call('EXISTS', record) == 1 then release() return 'decided' end
local current = redis.call('HGET', conversion, 'n') or coldVersion
if current ~= expected then return 'conflict' end
release()
redis.call('SET', record, conversionId .. '\\31' .. version, 'EX', ttl)
if version ~= '0' then
  redis.call('HSET', conversion, 'n', version, 'o' .. version, outcome)
  redis.call('EXPIRE', conversion, ttl)
  return redis.call('XADD', outbox, '*', 'k', messageKey, 'v', outcome)
end
return 'ok'
`,
})

/**
 * Stores a batch of clicks in their buckets and returns, per click, the postbacks parked
 * waiting for it. A bucket's TTL is only ever extended (a click recorded late into an older
 * bucket keeps the whole bucket for its hot period).
 */
const recordClickBatch = defineBatchScript<'bucket' | 'parked', 'field' | 'value' | 'ttl', string[]>({
  name: 'cjRecordClicks',
  keys: ['bucket', 'parked'],
  args: ['field', 'value', 'ttl'],
  lua: `
redis.call('HSET', bucket, field, value)
if redis.call('TTL', bucket) < tonumber(ttl) then redis.call('EXPIRE', bucket, ttl) end
return redis.call('HVALS', parked)
`,
})

/** A stream entry ID (`<ms>-<seq>`) when an outcome was appended to the outbox. */
export type CommitResult = 'ok' | 'conflict' | 'decided' | 'claimed' | `${number}-${number}`
export type ParkResult = 'ok' | 'click' | 'decided'

export function isOutboxEntryId(result: string): result is `${number}-${number}` {
  return /^\d+-\d+$/.test(result)
}

// ---------------------------------------------------------------------------------------------
// Named shapes of what the attributor reads and writes.
// ---------------------------------------------------------------------------------------------

/** A postback parked until its click arrives, as stored, and the click it is parked under. */
export interface ParkedEntry {
  deadlineMs: number
  offset: string
  json: string
  parkedUnder: string
}

/** What Redis knows about one postback before it is decided. */
export interface PostbackFacts {
  /** Set when this postback_id was decided already: which conversion version it produced. */
  decided: { conversionId: string; version: number } | undefined
  /** The click's compact state, when the click is in Redis. */
  clickText: string | undefined
  /** Postbacks of the same click still waiting for it (only read when asked for). */
  parkedBefore: ParkedEntry[]
  /** The clicks earlier postbacks of the same txn_id conversion are parked under. */
  conversionParkedUnder: string[]
}

export interface PostbackRead {
  postbackId: string
  /** undefined for an invalid click ID: there is no click to read. */
  clickId: string | undefined
  withParked: boolean
  /** `conversionPartitionKey` of a txn_id postback: read which clicks its conversion is parked under. */
  parkedConversion: string | undefined
}

export type StoreWrite =
  | {
      kind: 'commit'
      conversionId: string
      postbackId: string
      clickId: string
      /** The version the decision was made against (0 = new conversion). */
      expectedVersion: number
      /** The version ClickHouse holds, when Redis did not have the conversion. */
      coldVersion: number
      /** 0 = a duplicate: nothing changes but the postback's record. */
      newVersion: number
      outcomeJson: string
      /** The parked copy this decision consumes, if it was parked: under which click. */
      parkedUnder: string | undefined
      /** `conversionPartitionKey` of a txn_id postback, whose parked index to clean up. */
      parkedConversion: string | undefined
    }
  | { kind: 'release'; postbackId: string; parkedUnder: string; parkedConversion: string | undefined }
  | {
      kind: 'park'
      postbackId: string
      /** The click it waits for: its own, or the click earlier postbacks of its conversion wait for. */
      parkedUnder: string
      parkedConversion: string | undefined
      deadlineMs: number
      offset: string
      json: string
    }

export type StoreWriteResult = CommitResult | ParkResult

export interface AttributorStore {
  readonly keys: AttributorKeys
  readPostbacks(reads: readonly PostbackRead[]): Promise<PostbackFacts[]>
  readConversions(conversionIds: readonly string[]): Promise<(ConversionSoFar | undefined)[]>
  /** The stored outcome JSON of each (conversion, version), or undefined once expired. */
  readOutcomes(versions: readonly { conversionId: string; version: number }[]): Promise<(string | undefined)[]>
  /** Every write in one pipeline, replies in the same order. */
  write(outboxKey: string, writes: readonly StoreWrite[]): Promise<StoreWriteResult[]>
  /** Appends already-decided outcomes to the outbox again; returns their entry IDs. */
  appendToOutbox(outboxKey: string, entries: readonly { key: string; value: string }[]): Promise<string[]>
  /** Stores clicks and returns, for each, the postbacks that were parked waiting for it. */
  recordClicks(clicks: readonly { click: ClickV1; clickIdCreatedAtMs: number | undefined }[]): Promise<ParkedEntry[][]>
  /** Up to `limit` parked postbacks whose deadline passed, as due members. */
  overdue(nowMs: number, limit: number): Promise<string[]>
  readParked(members: readonly string[]): Promise<(ParkedEntry | undefined)[]>
  forgetDue(members: readonly string[]): Promise<void>
  parkedCount(): Promise<number>
}

export interface StoreSettings {
  keyPrefix: string
  /** How long a click bucket stays after its latest write (plus the margin). */
  hotSeconds: number
  /** Added to a click's TTL: clock skew, grace, late postbacks. */
  clickTtlMarginSeconds: number
  /** How long a decided conversion and each postback's record stay in Redis. */
  conversionTtlSeconds: number
}

export function createAttributorStore(
  redis: Redis,
  settings: StoreSettings,
  timed: <T>(op: string, work: () => Promise<T>) => Promise<T>,
): AttributorStore {
  const keys = attributorKeys(settings.keyPrefix)
  for (const script of [readConversion, decideBatch, recordClickBatch]) script.define(redis)

  return {
    keys,
    async readPostbacks(reads) {
      if (reads.length === 0) return []
      const replies = await timed('read_postbacks', () => {
        const pipeline = redis.pipeline()
        for (const read of reads) {
          pipeline.get(keys.postback(read.postbackId))
          if (read.clickId === undefined) pipeline.echo('')
          else {
            const click = keys.click(read.clickId)
            pipeline.hget(click.key, click.field)
          }
          if (read.clickId !== undefined && read.withParked) pipeline.hvals(keys.parked(read.clickId))
          else pipeline.echo('')
          if (read.parkedConversion !== undefined && read.withParked) pipeline.hvals(keys.parkedConversion(read.parkedConversion))
          else pipeline.echo('')
        }
        return execPipeline(pipeline)
      })
      return reads.map((read, i) => {
        const [record, click, parked, under] = replies.slice(4 * i, 4 * i + 4) as [string | null, string | null, string[] | string, string[] | string]
        return {
          decided: record === null ? undefined : parsePostbackRecord(record),
          clickText: click === null || click === '' ? undefined : click,
          parkedBefore: Array.isArray(parked) ? parked.map((entry) => ({ ...parseParked(entry), parkedUnder: read.clickId! })) : [],
          conversionParkedUnder: Array.isArray(under) ? under : [],
        }
      })
    },

    async readConversions(conversionIds) {
      if (conversionIds.length === 0) return []
      const replies = await timed('read_conversions', () => {
        const pipeline = redis.pipeline()
        for (const id of conversionIds) readConversion.queue(pipeline, { conversion: keys.conversion(id) }, {})
        return execPipeline(pipeline)
      })
      return replies.map((reply) => {
        const stored = reply as typeof readConversion.reply
        if (stored === null || stored[1] === null) return undefined
        return { version: Number(stored[0]), outcome: JSON.parse(stored[1]) as OutcomeV1 }
      })
    },

    async readOutcomes(versions) {
      if (versions.length === 0) return []
      const replies = await timed('read_replays', () => {
        const pipeline = redis.pipeline()
        for (const v of versions) pipeline.hget(keys.conversion(v.conversionId), `o${v.version}`)
        return execPipeline(pipeline)
      })
      return replies.map((json) => (json === null ? undefined : (json as string)))
    },

    async write(outboxKey, writes) {
      if (writes.length === 0) return []
      const items = writes.map((w) => {
        const parkedIndex = w.parkedConversion === undefined ? '' : keys.parkedConversion(w.parkedConversion)
        if (w.kind === 'park') {
          const click = keys.click(w.parkedUnder)
          return {
            keys: { conversion: click.key, record: keys.postback(w.postbackId), outbox: outboxKey, due: keys.due, parked: keys.parked(w.parkedUnder), parkedIndex },
            args: {
              kind: 'park',
              expected: '',
              coldVersion: '',
              version: w.deadlineMs,
              outcome: formatParked(w.deadlineMs, w.offset, w.json),
              ttl: '',
              messageKey: w.parkedUnder,
              claim: dueMember(w.parkedUnder, w.postbackId),
              conversionId: w.postbackId,
              clickField: click.field,
            },
          }
        }
        const commit =
          w.kind === 'commit'
            ? w
            : // A release never matches the compare-and-set: it only drops the parked copy of a
              // postback decided by another path, and answers 'decided'.
              { conversionId: '-', expectedVersion: -1, coldVersion: 0, newVersion: 0, outcomeJson: '', clickId: w.parkedUnder, ...w }
        const claim = commit.parkedUnder === undefined ? '' : dueMember(commit.parkedUnder, commit.postbackId)
        return {
          keys: {
            conversion: keys.conversion(commit.conversionId),
            record: keys.postback(commit.postbackId),
            outbox: outboxKey,
            due: keys.due,
            parked: keys.parked(commit.parkedUnder ?? commit.clickId),
            parkedIndex,
          },
          args: {
            kind: 'commit',
            expected: commit.expectedVersion,
            coldVersion: commit.coldVersion,
            version: commit.newVersion,
            outcome: commit.outcomeJson,
            ttl: w.kind === 'commit' ? settings.conversionTtlSeconds : 1,
            messageKey: commit.clickId,
            claim,
            conversionId: commit.conversionId,
            clickField: '',
          },
        }
      })
      const pipeline = redis.pipeline()
      decideBatch.queue(pipeline, items)
      const [replies] = await timed('commit', () => execPipeline(pipeline))
      return replies as typeof decideBatch.reply
    },

    async appendToOutbox(outboxKey, entries) {
      if (entries.length === 0) return []
      const pipeline = redis.pipeline()
      for (const e of entries) pipeline.xadd(outboxKey, '*', 'k', e.key, 'v', e.value)
      return (await timed('replay', () => execPipeline(pipeline))) as string[]
    },

    async recordClicks(clicks) {
      if (clicks.length === 0) return []
      const ttl = clickTtlSeconds(settings.hotSeconds, settings.clickTtlMarginSeconds)
      const pipeline = redis.pipeline()
      recordClickBatch.queue(
        pipeline,
        clicks.map(({ click, clickIdCreatedAtMs }) => {
          const location = keys.click(click.click_id)
          return {
            keys: { bucket: location.key, parked: keys.parked(click.click_id) },
            args: { field: location.field, value: encodeClickState(click, clickIdCreatedAtMs), ttl },
          }
        }),
      )
      const [replies] = await timed('record_clicks', () => execPipeline(pipeline))
      return (replies as typeof recordClickBatch.reply).map((entries, i) =>
        entries.map((entry) => ({ ...parseParked(entry), parkedUnder: clicks[i]!.click.click_id })),
      )
    },

    overdue: (nowMs, limit) => timed('sweep_read', () => redis.zrangebyscore(keys.due, '-inf', nowMs, 'LIMIT', 0, limit)),

    async readParked(members) {
      if (members.length === 0) return []
      const replies = await timed('sweep_read', () => {
        const pipeline = redis.pipeline()
        for (const member of members) {
          const at = member.indexOf(':')
          pipeline.hget(keys.parked(member.slice(0, at)), member.slice(at + 1))
        }
        return execPipeline(pipeline)
      })
      return replies.map((value, i) =>
        value === null ? undefined : { ...parseParked(value as string), parkedUnder: members[i]!.slice(0, members[i]!.indexOf(':')) },
      )
    },

    async forgetDue(members) {
      if (members.length > 0) await redis.zrem(keys.due, ...members)
    },

    parkedCount: () => redis.zcard(keys.due),
  }
}

/** Runs a pipeline and returns its replies, throwing the first command error. */
export async function execPipeline(pipeline: ChainableCommander): Promise<unknown[]> {
  const replies = (await pipeline.exec()) ?? []
  return replies.map(([error, reply]) => {
    if (error) throw error
    return reply
  })
}
