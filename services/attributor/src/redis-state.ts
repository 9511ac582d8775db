import { CLICK_ID_PATTERN } from '@clickjoin/click-id'
import type { ClickV1 } from '@clickjoin/contracts'
import type { ClickState } from './rules.ts'

/**
 * Redis layout of the attributor (docs/redis.md), every key under the service's key prefix:
 *
 *   h<bucket><shard>     hash     hot clicks, bucketed by the time their click ID carries (10 s)
 *                                 and its first random byte: field = 9 more random bytes of the
 *                                 ID, value = the click as the join needs it (encodeClickState).
 *                                 TTL of the bucket = hot period + margin from its latest write
 *                                 (see clickLocation)
 *   K:<click_id>         hash     the same for an ID not in the click-ID format (never from ingest)
 *   v:<conversion_id>    hash     n = latest version, o<k> = OutcomeV1 JSON of version k
 *   b:<postback_id>      string   "<conversion_id>\x1f<version>": which version this postback
 *                                 produced (0 = it was a duplicate), so a redelivery replays it
 *   w:<click_id>         hash     postbacks parked until their click arrives:
 *                                 postback_id → "<deadline ms>|<offset>|<PostbackV1 JSON>"
 *   wc:<t:partner:txn>   hash     parked postbacks of a txn_id conversion: postback_id → the click
 *                                 it is parked under (later postbacks of it queue behind them)
 *   due                  zset     "<click_id>:<postback_id>" scored by the parked deadline
 *   ob:<partition>|ob:s  stream   outbox: decided outcomes not yet acknowledged by Kafka
 *
 * The config store (packages/campaigns) keeps `campaigns`, `partners` and `config-changes`
 * under the same prefix; none of these names collide with them.
 */
export function attributorKeys(prefix: string) {
  return {
    click: (clickId: string) => clickLocation(prefix, clickId),
    conversion: (conversionId: string) => `${prefix}v:${conversionId}`,
    postback: (postbackId: string) => `${prefix}b:${postbackId}`,
    parked: (clickId: string) => `${prefix}w:${clickId}`,
    parkedConversion: (partitionKey: string) => `${prefix}wc:${partitionKey}`,
    due: `${prefix}due`,
    outbox: (partition: number | 'sweeper') => `${prefix}ob:${partition === 'sweeper' ? 's' : partition}`,
  }
}
export type AttributorKeys = ReturnType<typeof attributorKeys>

/** Clicks whose IDs were made within this span share a bucket (per shard). */
export const CLICK_BUCKET_MS = 10_000

/**
 * Where a hot click lives: a hash per (10 s of click-ID time, first random byte of the ID), the
 * field being the next 9 random bytes. Small hashes are stored by Redis as one listpack — field,
 * value and two length bytes each, no per-click key, object or expiry entry — so a click costs
 * about its 9 + ~15 bytes plus a share of the bucket's own overhead (docs/redis.md). 72 random
 * bits within one 10 s bucket and shard never collide in practice; the MAC was verified before
 * any lookup. Any other ID (not from ingest) gets a one-field hash under `K:`.
 */
export function clickLocation(prefix: string, clickId: string): { key: Buffer | string; field: Buffer | string } {
  if (!CLICK_ID_PATTERN.test(clickId)) return { key: `${prefix}K:${clickId}`, field: 'c' }
  const id = Buffer.from(clickId, 'base64url')
  const bucket = Buffer.allocUnsafe(5)
  bucket.writeUInt32BE(Math.floor(id.readUIntBE(1, 6) / CLICK_BUCKET_MS) >>> 0, 0)
  bucket[4] = id[7]!
  return { key: Buffer.concat([Buffer.from(`${prefix}h`), bucket]), field: id.subarray(8, 17) }
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

/** The parked-set member for a postback; click IDs that get parked never contain ':'. */
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
