import { CLICK_ID_PATTERN } from '@clickjoin/click-id'
import type { ClickV1 } from '@clickjoin/contracts'
import { SLOT_COUNT, hashTag, keySlot } from '@clickjoin/redis'
import type { ClickState } from './rules.ts'

/**
 * Redis layout of the attributor (docs/redis-cluster.md), every key under the service's key
 * prefix and every key in one of KEY_SHARDS hash-tag groups `{t}`, so that everything one
 * script call touches shares a hash slot in a Redis Cluster:
 *
 * Click side, in the shard of the click ID (shardOf(click_id)):
 *   h{t}<bucket><byte>   hash     hot clicks, bucketed by the time their click ID carries (10 s)
 *                                 and its first random byte: field = 9 more random bytes of the
 *                                 ID, value = the click as the join needs it (encodeClickState).
 *                                 TTL of the bucket = hot period + margin from its latest write
 *   K:{t}<click_id>      hash     the same for an ID not in the click-ID format (never from ingest)
 *   w:{t}<click_id>      hash     postbacks parked until their click arrives:
 *                                 postback_id → "<deadline ms>|<offset>|<PostbackV1 JSON>"
 *   due{t}               zset     "<click_id>:<postback_id>" scored by the parked deadline
 *
 * Conversion side, in the shard of the postback's conversion partition key (the key of the
 * conversions topic: `t:<partner>:<txn_id>`, else the click ID — so a conversion without a
 * txn_id lives in its click's shard):
 *   v:{t}<conversion_id> hash     n = latest version, o<k> = OutcomeV1 JSON of version k
 *   b:{t}<postback_id>   string   "<conversion_id>\x1f<version>": which version this postback
 *                                 produced (0 = it was a duplicate), so a redelivery replays it
 *   wc:{t}<t:partner:txn> hash    parked postbacks of a txn_id conversion: postback_id → the click
 *                                 it is parked under (later postbacks of it queue behind them)
 *   ob{t}                stream   outbox: decided outcomes not yet acknowledged by Kafka
 *
 * The config store (packages/campaigns) keeps `campaigns`, `partners` and `config-changes`
 * under the same prefix; none of these names collide with them.
 */
export function attributorKeys(prefix: string) {
  if (/[{}]/.test(prefix)) throw new Error(`REDIS_KEY_PREFIX must not contain braces (they would decide the hash slot): ${JSON.stringify(prefix)}`)
  const tag = (shard: number) => SHARD_TAGS[shard]!
  return {
    click: (clickId: string) => clickLocation(prefix, clickId),
    parked: (clickId: string) => `${prefix}w:${tag(shardOf(clickId))}${clickId}`,
    due: (shard: number) => `${prefix}due${tag(shard)}`,
    conversion: (partitionKey: string, conversionId: string) => `${prefix}v:${tag(shardOf(partitionKey))}${conversionId}`,
    postback: (partitionKey: string, postbackId: string) => `${prefix}b:${tag(shardOf(partitionKey))}${postbackId}`,
    parkedConversion: (partitionKey: string) => `${prefix}wc:${tag(shardOf(partitionKey))}${partitionKey}`,
    outbox: (shard: number) => `${prefix}ob${tag(shard)}`,
    /** The outbox a conversion's outcomes are appended to: in its own shard. */
    outboxOf: (partitionKey: string) => `${prefix}ob${tag(shardOf(partitionKey))}`,
  }
}
export type AttributorKeys = ReturnType<typeof attributorKeys>

/**
 * How many hash-tag groups the attributor's keys are spread over. Each is one hash slot, so
 * this bounds how many cluster primaries share the load (64: even over 3 to ~20 primaries),
 * and a batch makes at most this many script calls. Changing it moves every key: it is part
 * of the layout, not a setting.
 */
export const KEY_SHARDS = 64

/**
 * The tag of each shard: the first short string whose slot falls in the shard's 1/64th of the
 * slot space, so the shards sit evenly on any cluster whose primaries hold equal slot ranges
 * (what `redis-cli --cluster create` makes).
 */
export const SHARD_TAGS: readonly string[] = Array.from({ length: KEY_SHARDS }, (_, shard) => {
  const span = SLOT_COUNT / KEY_SHARDS
  for (let k = 0; ; k++) {
    const candidate = k.toString(36)
    if (Math.floor(keySlot(candidate) / span) === shard) return hashTag(candidate)
  }
})

/**
 * The shard of a click ID or a conversion partition key. A click ID in the click-ID format
 * uses its first random byte (the byte that also splits its bucket, so a bucket is in one
 * shard); any other text its CRC16. A conversion without a txn_id is keyed by its click ID and
 * so shares the shard of its click.
 */
export function shardOf(clickIdOrPartitionKey: string): number {
  if (CLICK_ID_PATTERN.test(clickIdOrPartitionKey)) return Buffer.from(clickIdOrPartitionKey, 'base64url')[7]! % KEY_SHARDS
  return keySlot(clickIdOrPartitionKey) % KEY_SHARDS
}

/** Clicks whose IDs were made within this span share a bucket (per first random byte). */
export const CLICK_BUCKET_MS = 10_000

/**
 * Where a hot click lives: a hash per (10 s of click-ID time, first random byte of the ID), the
 * field being the next 9 random bytes. Small hashes are stored by Redis as one listpack — field,
 * value and two length bytes each, no per-click key, object or expiry entry — so a click costs
 * about its 9 + ~15 bytes plus a share of the bucket's own overhead (docs/redis.md). 72 random
 * bits within one 10 s bucket and byte never collide in practice; the MAC was verified before
 * any lookup. Any other ID (not from ingest) gets a one-field hash under `K:`. The shard tag
 * comes before the binary bucket bytes: only the first `{…}` decides the slot.
 */
export function clickLocation(prefix: string, clickId: string): { key: Buffer | string; field: Buffer | string } {
  if (!CLICK_ID_PATTERN.test(clickId)) return { key: `${prefix}K:${SHARD_TAGS[shardOf(clickId)]}${clickId}`, field: 'c' }
  const id = Buffer.from(clickId, 'base64url')
  const bucket = Buffer.allocUnsafe(5)
  bucket.writeUInt32BE(Math.floor(id.readUIntBE(1, 6) / CLICK_BUCKET_MS) >>> 0, 0)
  bucket[4] = id[7]!
  return { key: Buffer.concat([Buffer.from(`${prefix}h${SHARD_TAGS[id[7]! % KEY_SHARDS]}`), bucket]), field: id.subarray(8, 17) }
}

// ---------------------------------------------------------------------------------------------
// Compact click encoding: base36 numbers and the text fields joined by the ASCII unit separator,
// trailing empty fields dropped. The click time is stored relative to the time the click ID
// carries (the same for clicks ingest records live: ''), so "\x1f1jk00\x1fdemo\x1fpub-42" is 18
// bytes. A field that itself contains the separator (free text can) makes the whole value a JSON
// array instead.
// ---------------------------------------------------------------------------------------------
const SEPARATOR = '\x1f'

/** `clickIdCreatedAtMs`: the time the click ID carries (verifyClickId), or undefined if unknown. */
export function encodeClickState(click: ClickV1, clickIdCreatedAtMs: number | undefined): string {
  const fields = [
    clickIdCreatedAtMs === undefined ? `=${click.ts.toString(36)}` : (click.ts - clickIdCreatedAtMs || '').toString(36),
    click.window_seconds.toString(36),
    click.campaign_id,
    click.publisher_id,
    click.sub1,
    click.sub2,
    click.sub3,
    click.sub4,
    click.sub5,
  ]
  if (fields.some((field) => field.includes(SEPARATOR))) return JSON.stringify(fields)
  while (fields.at(-1) === '') fields.pop()
  return fields.join(SEPARATOR)
}

export function decodeClickState(clickId: string, encoded: string, clickIdCreatedAtMs: number | undefined): ClickState {
  const fields: string[] = encoded.startsWith('[') ? (JSON.parse(encoded) as string[]) : encoded.split(SEPARATOR)
  const at = (i: number) => fields[i] ?? ''
  const time = at(0)
  return {
    clickId,
    ts: time.startsWith('=') ? parseInt(time.slice(1), 36) : (clickIdCreatedAtMs ?? 0) + (time === '' ? 0 : parseInt(time, 36)),
    windowSeconds: parseInt(at(1), 36),
    campaignId: at(2),
    publisherId: at(3),
    subs: [at(4), at(5), at(6), at(7), at(8)],
  }
}

/**
 * How long a click bucket stays in Redis after a click was written to it: the hot period
 * (older clicks are read from ClickHouse) plus a margin for clock skew, the grace period and
 * postbacks that reach us late. Independent of the click's windows, so Redis memory depends on
 * the click rate and the hot period only.
 */
export function clickTtlSeconds(hotSeconds: number, marginSeconds: number): number {
  return Math.max(1, hotSeconds + marginSeconds)
}

/** The parked-set member for a postback (in the due set of its click's shard); click IDs that get parked never contain ':'. */
export function dueMember(clickId: string, postbackId: string): string {
  return `${clickId}:${postbackId}`
}

export function parseDueMember(member: string): { clickId: string; postbackId: string } {
  const at = member.indexOf(':')
  return { clickId: member.slice(0, at), postbackId: member.slice(at + 1) }
}

/**
 * `<deadline>|<offset>|<json>` as stored in the parked hash; the Kafka offset keeps postbacks
 * of one click (one partition) in the order they were received.
 */
export function formatParked(deadlineMs: number, offset: string, json: string): string {
  return `${deadlineMs}|${offset}|${json}`
}

export function parseParked(stored: string): { deadlineMs: number; offset: string; json: string } {
  const first = stored.indexOf('|')
  const second = stored.indexOf('|', first + 1)
  return { deadlineMs: Number(stored.slice(0, first)), offset: stored.slice(first + 1, second), json: stored.slice(second + 1) }
}

export function parsePostbackRecord(stored: string): { conversionId: string; version: number } {
  const at = stored.lastIndexOf(SEPARATOR)
  return { conversionId: stored.slice(0, at), version: Number(stored.slice(at + 1)) }
}
