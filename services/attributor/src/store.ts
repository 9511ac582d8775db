import { createHash } from 'node:crypto'
import { Command } from 'ioredis'
import type { ClickV1, OutcomeV1 } from '@clickjoin/contracts'
import { groupBySlot, isCluster, type RedisClient } from '@clickjoin/redis'
import type { OutboxEntry } from './outbox.ts'
import {
  attributorKeys,
  clickTtlSeconds,
  dueMember,
  encodeClickState,
  formatParked,
  KEY_SHARDS,
  parseDueMember,
  parseParked,
  parsePostbackRecord,
  shardOf,
  type AttributorKeys,
} from './redis-state.ts'
import type { ConversionSoFar } from './rules.ts'

/**
 * The attributor's Redis, typed: every read returns named fields and every Lua script takes
 * a named object, so no caller indexes `results[3 * i + 1]` or counts positional ARGV. The key
 * layout is in redis-state.ts and docs/redis-cluster.md. Works on one Redis and on a Redis
 * Cluster alike: every script call touches the keys of one shard (one hash slot), a batch
 * makes one call per shard it touches, written to its node's connection at once; the few
 * single-key commands are issued together (auto-pipelined per node by the client).
 */

// ---------------------------------------------------------------------------------------------
// Scripts with named keys and arguments. The Lua body refers to them by name: a prelude binds
// `local <name> = KEYS[i]` / `ARGV[j]` in the declared order, which is also the order the
// named object is flattened in. A missing name is a type error, not a shifted argument.
// ---------------------------------------------------------------------------------------------
type Value = string | number | Buffer

/** Scripts sent again with EVAL after a NOSCRIPT (a fresh or restarted node), in this process. */
let scriptReloads = 0

interface ScriptSpec<K extends string, A extends string> {
  name: string
  keys: readonly K[]
  args: readonly A[]
  lua: string
}

/**
 * Runs a script by its SHA, loading it with EVAL where the node does not have it yet (a fresh
 * or restarted node). EVALSHA rather than ioredis' defineCommand, whose command a cluster
 * client may route by its first argument, the key count (wrong node); EVALSHA is routed by its
 * first key.
 */
function scriptRunner(lua: string) {
  const sha = createHash('sha1').update(lua).digest('hex')
  return async (redis: RedisClient, numKeys: number, values: Value[]): Promise<unknown> => {
    try {
      return await sendNow(redis, 'evalsha', sha, numKeys, values)
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        scriptReloads++
        return sendNow(redis, 'eval', lua, numKeys, values)
      }
      throw err
    }
  }
}

/**
 * Writes a script call to its node's connection at once, in call order, bypassing ioredis'
 * auto-pipelining: that keeps one pipeline in flight per node and queues every later command
 * until all of its replies are in, so a partition's commit waited for the other partitions'
 * whole round trips and the partitions moved in lockstep (Redis idle while the attributor
 * planned, and the other way round). A script call is already a whole round's batch: there is
 * nothing to pipeline it with. The values go in as one array (ioredis flattens it): spreading
 * a large batch into a call would overflow the stack.
 */
function sendNow(redis: RedisClient, name: 'evalsha' | 'eval', script: string, numKeys: number, values: Value[]): Promise<unknown> {
  // Replies as strings (a bare Command answers Buffers), and any key prefix, as ioredis' own methods set them.
  const { keyPrefix } = redis.options
  const command = new Command(name, [script, numKeys, values], { replyEncoding: 'utf8', ...(keyPrefix ? { keyPrefix } : {}) })
  void redis.sendCommand(command)
  return command.promise
}

function defineScript<K extends string, A extends string, R>(spec: ScriptSpec<K, A>) {
  const prelude = [
    ...spec.keys.map((k, i) => `local ${k} = KEYS[${i + 1}]`),
    ...spec.args.map((a, i) => `local ${a} = ARGV[${i + 1}]`),
  ].join('\n')
  const run = scriptRunner(`-- ${spec.name}\n${prelude}\n${spec.lua}`)
  return {
    call(redis: RedisClient, keys: Record<K, Value>, args: Record<A, Value>): Promise<R> {
      const flat = [...spec.keys.map((k) => keys[k]), ...spec.args.map((a) => args[a])]
      return run(redis, spec.keys.length, flat) as Promise<R>
    },
  }
}

/**
 * A script that applies `body` to every item of a batch in one call: Redis runs it as one
 * command, so the whole batch's writes reach the append-only file with one fsync (a pipeline
 * of one script per item spans many reads of the connection, each followed by an fsync). The
 * body sees each item's keys and arguments by name and `return`s that item's reply; the
 * script returns the replies in order. In a cluster every key of one call must share a slot:
 * callBySlot makes one call per slot, each with the items of that slot in batch order.
 */
function defineBatchScript<K extends string, A extends string, R>(spec: ScriptSpec<K, A>) {
  const nk = spec.keys.length
  const na = spec.args.length
  const lua = `-- ${spec.name}
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
  type Item = { keys: Record<K, Value>; args: Record<A, Value> }
  const run = scriptRunner(lua)
  async function call(redis: RedisClient, items: readonly Item[]): Promise<R[]> {
    // Every item's keys, then every item's arguments, in one array (a batch of 1,000 is 5,000+ values).
    const values = new Array<Value>(items.length * (nk + na))
    let at = 0
    for (const item of items) for (const k of spec.keys) values[at++] = item.keys[k]
    const numKeys = at
    for (const item of items) for (const a of spec.args) values[at++] = item.args[a]
    return (await run(redis, numKeys, values)) as R[]
  }
  return {
    /**
     * One call per hash slot on a Redis Cluster (`slotKey` names a string key of the item that
     * shares the slot of all its keys), all sent at once; one call for all items on a single
     * Redis. The replies in the order of `items`.
     */
    async callBySlot<I extends Item>(redis: RedisClient, items: readonly I[], slotKey: (item: I) => string): Promise<R[]> {
      const replies: R[] = new Array<R>(items.length)
      const entries = items.map((item, index) => ({ item, index }))
      // One Redis takes keys of every slot in one script: the whole batch is one call, one fsync.
      const groups = isCluster(redis) ? groupBySlot(entries, (entry) => slotKey(entry.item)) : new Map([[0, entries]])
      if (entries.length === 0) return replies
      await Promise.all(
        [...groups.values()].map(async (group) => {
          const groupReplies = await call(redis, group.map((entry) => entry.item))
          group.forEach((entry, i) => (replies[entry.index] = groupReplies[i]!))
        }),
      )
      return replies
    },
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
 * What a decision round needs of each postback on its conversion's side (its shard): the
 * postback's decision record, the clicks its txn_id conversion is parked under, and the
 * latest version of each conversion it may belong to (one or two). Read-only: nothing reaches
 * the append-only file. Replies `{record|false, parkedUnder[], n1|false, o1|false, n2|false, o2|false}`.
 */
const readConversionSide = defineBatchScript<
  'record' | 'parkedIndex' | 'first' | 'second',
  'withIndex' | 'conversions',
  [string | null, string[], string | null, string | null, string | null, string | null]
>({
  name: 'cjReadConversionSide',
  keys: ['record', 'parkedIndex', 'first', 'second'],
  args: ['withIndex', 'conversions'],
  lua: `
local function latest(conversion)
  local n = redis.call('HGET', conversion, 'n')
  if not n then return false, false end
  return n, (redis.call('HGET', conversion, 'o' .. n) or false)
end
local under = {}
if withIndex == '1' then under = redis.call('HVALS', parkedIndex) end
local n1, o1 = latest(first)
local n2, o2 = false, false
if conversions == '2' then n2, o2 = latest(second) end
return {redis.call('GET', record) or false, under, n1, o1, n2, o2}
`,
})

/**
 * What a decision round needs on the click's side (its shard): the click's compact state and,
 * when asked, the postbacks parked for it. Replies `{state|false, parked[]}`.
 */
const readClickSide = defineBatchScript<'bucket' | 'parked', 'field' | 'withParked', [string | null, string[]]>({
  name: 'cjReadClickSide',
  keys: ['bucket', 'parked'],
  args: ['field', 'withParked'],
  lua: `
local waiting = {}
if withParked == '1' then waiting = redis.call('HVALS', parked) end
return {redis.call('HGET', bucket, field) or false, waiting}
`,
})

/**
 * Makes decisions stick, or refuses them, atomically (compare-and-set), every key in the
 * conversion's shard:
 *  - 'decided'  this postback_id already has a decision: the caller replays it instead (or,
 *               for a parked copy, only releases it);
 *  - 'conflict' the conversion changed since the caller read it: read again and decide again;
 *  - 'ok'       recorded a duplicate (postback → version 0);
 *  - <entry ID> recorded: postback → version, the conversion's new version, and the outcome
 *               appended to the shard's outbox under this stream entry ID, all or nothing.
 * `coldVersion` is the version ClickHouse holds when Redis no longer does (0 when none): a
 * conversion absent from Redis counts as at that version, so the compare-and-set holds
 * across the tiers. A txn_id postback (`indexed` = '1') also leaves its conversion's parked
 * index. Items are applied in order, so a later item sees what an earlier one wrote (a
 * pending and its approval in one batch: the second gets 'conflict' and is decided again).
 */
const decideBatch = defineBatchScript<
  'conversion' | 'record' | 'outbox' | 'parkedIndex',
  'indexed' | 'postbackId' | 'expected' | 'coldVersion' | 'version' | 'outcome' | 'ttl' | 'messageKey' | 'conversionId',
  CommitResult
>({
  name: 'cjDecideBatch',
  keys: ['conversion', 'record', 'outbox', 'parkedIndex'],
  args: ['indexed', 'postbackId', 'expected', 'coldVersion', 'version', 'outcome', 'ttl', 'messageKey', 'conversionId'],
  lua: `
if redis.call('EXISTS', record) == 1 then
  if indexed == '1' then redis.call('HDEL', parkedIndex, postbackId) end
  return 'decided'
end
local current = redis.call('HGET', conversion, 'n') or coldVersion
if current ~= expected then return 'conflict' end
if indexed == '1' then redis.call('HDEL', parkedIndex, postbackId) end
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
 * Parks postbacks whose click has not arrived, every key in the click's shard: 'click' when
 * the click is there now (decide at once), else 'ok' (parking twice keeps the first
 * deadline). Linearizable with the click writer (cjRecordClicks, same slot): either this sees
 * the click, or the click writer's read of the parked hash (after its HSET) sees this postback.
 */
const parkBatch = defineBatchScript<'bucket' | 'parked' | 'due', 'clickField' | 'postbackId' | 'entry' | 'deadline' | 'member', ParkResult>({
  name: 'cjParkBatch',
  keys: ['bucket', 'parked', 'due'],
  args: ['clickField', 'postbackId', 'entry', 'deadline', 'member'],
  lua: `
if redis.call('HEXISTS', bucket, clickField) == 1 then return 'click' end
if redis.call('HSETNX', parked, postbackId, entry) == 1 then redis.call('ZADD', due, deadline, member) end
return 'ok'
`,
})

/** Drops the parked copies of decided postbacks (click shard): their due entry and parked field. */
const releaseBatch = defineBatchScript<'parked' | 'due', 'postbackId' | 'member', number>({
  name: 'cjReleaseParked',
  keys: ['parked', 'due'],
  args: ['postbackId', 'member'],
  lua: `
redis.call('ZREM', due, member)
return redis.call('HDEL', parked, postbackId)
`,
})

/** Indexes parked txn_id postbacks under their conversion (conversion shard): postback → click. */
const indexBatch = defineBatchScript<'parkedIndex', 'postbackId' | 'clickId', number>({
  name: 'cjIndexParked',
  keys: ['parkedIndex'],
  args: ['postbackId', 'clickId'],
  lua: `
return redis.call('HSET', parkedIndex, postbackId, clickId)
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
export type CommitResult = 'ok' | 'conflict' | 'decided' | `${number}-${number}`
export type ParkResult = 'ok' | 'click'

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
  /**
   * The latest version of each conversion this postback may belong to, by conversion ID
   * (absent: not in Redis). Read in the same round trip as the rest, before the click's
   * campaign tells which identity applies; the commit's compare-and-set makes the early read safe.
   */
  conversions: Map<string, ConversionSoFar | undefined>
}

export interface PostbackRead {
  postbackId: string
  /** `conversionPartitionKey` of the postback: the shard of its record and conversion. */
  partitionKey: string
  /** undefined for an invalid click ID: there is no click to read. */
  clickId: string | undefined
  withParked: boolean
  /** `conversionPartitionKey` of a txn_id postback: read which clicks its conversion is parked under. */
  parkedConversion: string | undefined
  /** The conversion identities it may have (`possibleIdentities`): read their latest versions too. */
  conversionIds: readonly string[]
}

/** A conversion as Redis finds it: its identity and the partition key that shards it. */
export interface ConversionRef {
  partitionKey: string
  conversionId: string
}

export type StoreWrite =
  | {
      kind: 'commit'
      /** `conversionPartitionKey` of the postback: the shard the decision is written in. */
      partitionKey: string
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
  | { kind: 'release'; partitionKey: string; postbackId: string; parkedUnder: string; parkedConversion: string | undefined }
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
  /**
   * How many scripts had to be sent again after a NOSCRIPT so far (this process). A reloaded
   * script runs after whatever was sent on its connection meanwhile, not in its place.
   */
  scriptReloads(): number
  readPostbacks(reads: readonly PostbackRead[]): Promise<PostbackFacts[]>
  readConversions(conversions: readonly ConversionRef[]): Promise<(ConversionSoFar | undefined)[]>
  /** The stored outcome JSON of each (conversion, version), or undefined once expired. */
  readOutcomes(versions: readonly (ConversionRef & { version: number })[]): Promise<(string | undefined)[]>
  /**
   * Every write, replies in the same order: decisions with one script call per conversion
   * shard and parks with one per click shard, then the parked copies the decisions consumed
   * are released (click shard) and new txn_id parks indexed (conversion shard). A crash
   * between the two steps leaves a parked copy of a decided postback: whoever takes it up
   * next finds the decision and only releases it.
   */
  write(writes: readonly StoreWrite[]): Promise<StoreWriteResult[]>
  /** Appends already-decided outcomes again, each to the outbox of its conversion's shard. */
  appendToOutbox(entries: readonly { partitionKey: string; key: string; value: string }[]): Promise<OutboxEntry[]>
  /** Stores clicks and returns, for each, the postbacks that were parked waiting for it. */
  recordClicks(clicks: readonly { click: ClickV1; clickIdCreatedAtMs: number | undefined }[]): Promise<ParkedEntry[][]>
  /** Up to `limit` parked postbacks whose deadline passed (from every shard), as due members. */
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

function conversionSoFar(stored: [string, string | null] | null): ConversionSoFar | undefined {
  if (stored === null || stored[1] === null) return undefined
  return { version: Number(stored[0]), outcome: JSON.parse(stored[1]) as OutcomeV1 }
}

const SHARDS = Array.from({ length: KEY_SHARDS }, (_, shard) => shard)

export function createAttributorStore(
  redis: RedisClient,
  settings: StoreSettings,
  timed: <T>(op: string, work: () => Promise<T>) => Promise<T>,
): AttributorStore {
  const keys = attributorKeys(settings.keyPrefix)

  /** Phase two of write(): what phase one's replies leave to do in the other shard. */
  async function afterDecisions(writes: readonly StoreWrite[], results: readonly StoreWriteResult[]): Promise<void> {
    const releases: { keys: { parked: string; due: string }; args: { postbackId: string; member: string } }[] = []
    const indexes: { keys: { parkedIndex: string }; args: { postbackId: string; clickId: string } }[] = []
    writes.forEach((w, i) => {
      const result = results[i]!
      if (w.kind === 'park') {
        if (result === 'ok' && w.parkedConversion !== undefined) {
          indexes.push({ keys: { parkedIndex: keys.parkedConversion(w.parkedConversion) }, args: { postbackId: w.postbackId, clickId: w.parkedUnder } })
        }
      } else if (w.parkedUnder !== undefined && result !== 'conflict') {
        const member = dueMember(w.parkedUnder, w.postbackId)
        releases.push({
          keys: { parked: keys.parked(w.parkedUnder), due: keys.due(shardOf(w.parkedUnder)) },
          args: { postbackId: w.postbackId, member },
        })
      }
    })
    if (releases.length === 0 && indexes.length === 0) return
    await timed('release', () =>
      Promise.all([
        releaseBatch.callBySlot(redis, releases, (item) => item.keys.parked),
        indexBatch.callBySlot(redis, indexes, (item) => item.keys.parkedIndex),
      ]),
    )
  }

  return {
    keys,
    scriptReloads: () => scriptReloads,
    async readPostbacks(reads) {
      if (reads.length === 0) return []
      for (const read of reads) {
        if (read.conversionIds.length < 1 || read.conversionIds.length > 2) throw new Error(`postback ${read.postbackId}: 1 or 2 possible conversions, not ${read.conversionIds.length}`)
      }
      // Two batch scripts, one call per slot on a cluster (one in all on a single Redis), sent at
      // once: one round trip for the round, a handful of commands instead of five per postback.
      const clickReads = reads.flatMap((read, index) => {
        if (read.clickId === undefined) return []
        const click = keys.click(read.clickId)
        return [{ index, keys: { bucket: click.key, parked: keys.parked(read.clickId) }, args: { field: click.field, withParked: read.withParked ? '1' : '0' } }]
      })
      const [conversionSide, clickSide] = await timed('read_postbacks', () =>
        Promise.all([
          readConversionSide.callBySlot(
            redis,
            reads.map((read) => {
              const [first, second] = read.conversionIds
              const withIndex = read.parkedConversion !== undefined && read.withParked
              return {
                keys: {
                  record: keys.postback(read.partitionKey, read.postbackId),
                  // Always a key of this shard (a cluster refuses keys of other slots); read only when asked.
                  parkedIndex: keys.parkedConversion(read.parkedConversion ?? read.partitionKey),
                  first: keys.conversion(read.partitionKey, first!),
                  second: keys.conversion(read.partitionKey, second ?? first!),
                },
                args: { withIndex: withIndex ? '1' : '0', conversions: String(read.conversionIds.length) },
              }
            }),
            (item) => item.keys.record,
          ),
          readClickSide.callBySlot(redis, clickReads, (item) => item.keys.parked),
        ]),
      )
      const clicks = new Map(clickReads.map((read, i) => [read.index, clickSide[i]!]))
      return reads.map((read, i) => {
        const [record, under, n1, o1, n2, o2] = conversionSide[i]!
        const [click, parked] = clicks.get(i) ?? [null, []]
        const latest = [conversionSoFar(n1 === null ? null : [n1, o1]), conversionSoFar(n2 === null ? null : [n2, o2])]
        return {
          decided: record === null ? undefined : parsePostbackRecord(record),
          clickText: click === null || click === '' ? undefined : click,
          parkedBefore: parked.map((entry) => ({ ...parseParked(entry), parkedUnder: read.clickId! })),
          conversionParkedUnder: under,
          conversions: new Map(read.conversionIds.map((id, j) => [id, latest[j]])),
        }
      })
    },

    async readConversions(conversions) {
      if (conversions.length === 0) return []
      const replies = await timed('read_conversions', () =>
        Promise.all(conversions.map((c) => readConversion.call(redis, { conversion: keys.conversion(c.partitionKey, c.conversionId) }, {}))),
      )
      return replies.map(conversionSoFar)
    },

    async readOutcomes(versions) {
      if (versions.length === 0) return []
      const replies = await timed('read_replays', () =>
        Promise.all(versions.map((v) => redis.hget(keys.conversion(v.partitionKey, v.conversionId), `o${v.version}`))),
      )
      return replies.map((json) => json ?? undefined)
    },

    async write(writes) {
      if (writes.length === 0) return []
      const results: StoreWriteResult[] = new Array<StoreWriteResult>(writes.length)
      const parks: { index: number; item: Parameters<typeof parkBatch.callBySlot>[1][number] }[] = []
      const decisions: { index: number; item: Parameters<typeof decideBatch.callBySlot>[1][number] }[] = []
      writes.forEach((w, index) => {
        if (w.kind === 'park') {
          const click = keys.click(w.parkedUnder)
          parks.push({
            index,
            item: {
              keys: { bucket: click.key, parked: keys.parked(w.parkedUnder), due: keys.due(shardOf(w.parkedUnder)) },
              args: {
                clickField: click.field,
                postbackId: w.postbackId,
                entry: formatParked(w.deadlineMs, w.offset, w.json),
                deadline: w.deadlineMs,
                member: dueMember(w.parkedUnder, w.postbackId),
              },
            },
          })
          return
        }
        const commit =
          w.kind === 'commit'
            ? w
            : // A release never matches the compare-and-set: it only drops the parked copy of a
              // postback decided by another path, and answers 'decided'.
              { conversionId: '-', expectedVersion: -1, coldVersion: 0, newVersion: 0, outcomeJson: '', clickId: w.parkedUnder, ...w }
        decisions.push({
          index,
          item: {
            keys: {
              conversion: keys.conversion(commit.partitionKey, commit.conversionId),
              record: keys.postback(commit.partitionKey, commit.postbackId),
              outbox: keys.outboxOf(commit.partitionKey),
              // Always a key of this shard (a cluster refuses keys of other slots); used only when indexed.
              parkedIndex: keys.parkedConversion(commit.parkedConversion ?? commit.partitionKey),
            },
            args: {
              indexed: commit.parkedConversion === undefined ? '0' : '1',
              postbackId: commit.postbackId,
              expected: commit.expectedVersion,
              coldVersion: commit.coldVersion,
              version: commit.newVersion,
              outcome: commit.outcomeJson,
              ttl: w.kind === 'commit' ? settings.conversionTtlSeconds : 1,
              messageKey: commit.clickId,
              conversionId: commit.conversionId,
            },
          },
        })
      })
      const [parkReplies, decisionReplies] = await timed('commit', () =>
        Promise.all([
          parkBatch.callBySlot(
            redis,
            parks.map((p) => p.item),
            (item) => String(item.keys.parked),
          ),
          decideBatch.callBySlot(
            redis,
            decisions.map((d) => d.item),
            (item) => String(item.keys.record),
          ),
        ]),
      )
      parks.forEach((p, i) => (results[p.index] = parkReplies[i]!))
      decisions.forEach((d, i) => (results[d.index] = decisionReplies[i]!))
      await afterDecisions(writes, results)
      return results
    },

    async appendToOutbox(entries) {
      if (entries.length === 0) return []
      const ids = await timed('replay', () =>
        Promise.all(entries.map((e) => redis.xadd(keys.outboxOf(e.partitionKey), '*', 'k', e.key, 'v', e.value))),
      )
      return entries.map((e, i) => ({ outbox: keys.outboxOf(e.partitionKey), id: ids[i]!, key: e.key, value: e.value }))
    },

    async recordClicks(clicks) {
      if (clicks.length === 0) return []
      const ttl = clickTtlSeconds(settings.hotSeconds, settings.clickTtlMarginSeconds)
      const replies = await timed('record_clicks', () =>
        recordClickBatch.callBySlot(
          redis,
          clicks.map(({ click, clickIdCreatedAtMs }) => {
            const location = keys.click(click.click_id)
            return {
              keys: { bucket: location.key, parked: keys.parked(click.click_id) },
              args: { field: location.field, value: encodeClickState(click, clickIdCreatedAtMs), ttl },
            }
          }),
          (item) => item.keys.parked,
        ),
      )
      return replies.map((entries, i) => entries.map((entry) => ({ ...parseParked(entry), parkedUnder: clicks[i]!.click.click_id })))
    },

    async overdue(nowMs, limit) {
      const perShard = await timed('sweep_read', () =>
        Promise.all(SHARDS.map((shard) => redis.zrangebyscore(keys.due(shard), '-inf', nowMs, 'LIMIT', 0, limit))),
      )
      return perShard.flat().slice(0, limit)
    },

    async readParked(members) {
      if (members.length === 0) return []
      const replies = await timed('sweep_read', () =>
        Promise.all(
          members.map((member) => {
            const { clickId, postbackId } = parseDueMember(member)
            return redis.hget(keys.parked(clickId), postbackId)
          }),
        ),
      )
      return replies.map((value, i) =>
        value === null ? undefined : { ...parseParked(value), parkedUnder: parseDueMember(members[i]!).clickId },
      )
    },

    async forgetDue(members) {
      const byShard = new Map<number, string[]>()
      for (const member of members) {
        const shard = shardOf(parseDueMember(member).clickId)
        const group = byShard.get(shard)
        if (group) group.push(member)
        else byShard.set(shard, [member])
      }
      await Promise.all([...byShard].map(([shard, group]) => redis.zrem(keys.due(shard), ...group)))
    },

    async parkedCount() {
      const counts = await Promise.all(SHARDS.map((shard) => redis.zcard(keys.due(shard))))
      return counts.reduce((a, b) => a + b, 0)
    },
  }
}
