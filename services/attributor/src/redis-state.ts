import { CLICK_ID_PATTERN } from '@clickjoin/click-id'
import type { ClickV1 } from '@clickjoin/contracts'
import type { ClickState } from './rules.ts'

/**
 * Redis layout of the attributor (docs/redis.md), every key under the service's key prefix:
 *
 *   k<click_id bytes>    string   the click as the join needs it (compact, see encodeClickState);
 *                                 TTL = the hot period (capped by its longest window) + margin. The 32-character
 *                                 click ID is stored as its 24 bytes (see clickKey)
 *   v:<conversion_id>    hash     n = latest version, o<k> = OutcomeV1 JSON of version k
 *   b:<postback_id>      string   "<conversion_id>\x1f<version>": which version this postback
 *                                 produced (0 = it was a duplicate), so a redelivery replays it
 *   w:<click_id>         hash     postbacks parked until their click arrives:
 *                                 postback_id → "<deadline ms>|<offset>|<PostbackV1 JSON>"
 *   due                  zset     "<click_id>:<postback_id>" scored by the parked deadline
 *   ob:<partition>|ob:s  stream   outbox: decided outcomes not yet acknowledged by Kafka
 *
 * The config store (packages/campaigns) keeps `campaigns`, `partners` and `config-changes`
 * under the same prefix; none of these names collide with them.
 */
export function attributorKeys(prefix: string) {
  return {
    click: (clickId: string) => clickKey(prefix, clickId),
    conversion: (conversionId: string) => `${prefix}v:${conversionId}`,
    postback: (postbackId: string) => `${prefix}b:${postbackId}`,
    parked: (clickId: string) => `${prefix}w:${clickId}`,
    due: `${prefix}due`,
    outbox: (partition: number | 'sweeper') => `${prefix}ob:${partition === 'sweeper' ? 's' : partition}`,
  }
}
export type AttributorKeys = ReturnType<typeof attributorKeys>

/**
 * A click's key: the prefix, `k` and the click ID's 24 bytes rather than its 32 base64url
 * characters (every character carries 6 bits, so the mapping is one to one). With the default
 * prefix the key is 28 bytes and fits a 32-byte allocation instead of a 48-byte one: 16 bytes
 * less per click. Any other ID (not from ingest) keeps a text key under `K:`.
 */
export function clickKey(prefix: string, clickId: string): Buffer | string {
  if (!CLICK_ID_PATTERN.test(clickId)) return `${prefix}K:${clickId}`
  return Buffer.concat([Buffer.from(`${prefix}k`), Buffer.from(clickId, 'base64url')])
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
 * How long to keep a click in Redis: the hot period from now (older clicks are read from
 * ClickHouse), but never past the end of its longest window, plus a margin for clock skew,
 * the grace period and postbacks that reach us late.
 */
export function clickTtlSeconds(click: ClickV1, nowMs: number, marginSeconds: number, hotSeconds = Infinity): number {
  const untilEndOfLongestWindow = Math.ceil((click.ts + click.max_window_seconds * 1000 - nowMs) / 1000)
  return Math.max(1, Math.min(untilEndOfLongestWindow, hotSeconds) + marginSeconds)
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
