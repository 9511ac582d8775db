import { hash, randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Component } from '@clickjoin/service-runtime'

/** Same campaign, IP and user agent within this many seconds of the previous such click: a duplicate (SPEC §5). */
export const DUPLICATE_CLICK_WINDOW_SECONDS = 60

export interface DuplicateCheck {
  duplicate: boolean
  /** Call once the click is durable: only a recorded click opens or extends the window. */
  remember(): void
}

export interface DuplicateClickDetector {
  /** Whether the same campaign, IP and user agent clicked within the window, without waiting for anything. */
  check(campaignId: string, ip: string, userAgent: string): DuplicateCheck
}

/**
 * The sliding window as pure state: the last time each visitor key clicked. A click is a
 * duplicate when the previous one of its key is less than `windowMs` old, and every recorded
 * click moves the key's time forward — clicks at 0, 50 and 70 s: the second and the third are
 * duplicates. Entries are kept in time order (a Map keeps insertion order; a newer time
 * re-inserts), so expiring is a walk from the front.
 */
export class ClickWindow {
  private readonly lastClick = new Map<string, number>()

  constructor(readonly windowMs: number) {}

  isDuplicate(key: string, nowMs: number): boolean {
    const last = this.lastClick.get(key)
    return last !== undefined && nowMs - last < this.windowMs
  }

  remember(key: string, atMs: number): void {
    const last = this.lastClick.get(key)
    if (last !== undefined && last >= atMs) return
    this.lastClick.delete(key)
    this.lastClick.set(key, atMs)
  }

  /** Forgets the keys whose last click is out of the window. */
  expire(nowMs: number): void {
    for (const [key, at] of this.lastClick) {
      if (nowMs - at < this.windowMs) break
      this.lastClick.delete(key)
    }
  }

  get size(): number {
    return this.lastClick.size
  }
}

/** Key of a visitor for one campaign: a hash, so no IP or user agent is kept or sent anywhere. */
export function visitorKey(campaignId: string, ip: string, userAgent: string): string {
  // One-shot hash: no Hash object per click.
  return hash('sha256', `${campaignId}\n${ip}\n${userAgent}`, 'base64url').slice(0, 22)
}

export interface SharedClickWindowOptions {
  /** Publishes this replica's clicks (no reply awaited, nothing written to Redis' data or AOF). */
  redis: Redis
  /** A connection of its own in subscriber mode. */
  subscriber: Redis
  channel: string
  windowMs?: number
  now?: () => number
  /** How long clicks are collected into one PUBLISH. */
  publishEveryMs?: number
  onRedisError?: (err: unknown) => void
}

/**
 * The duplicate-click window shared by every replica without a round trip on the click path:
 * each replica keeps the whole window in memory and tells the others about its recorded clicks
 * by Redis pub/sub, a few milliseconds of clicks per PUBLISH. PUBLISH is not a write — no AOF,
 * no fsync — and nobody waits for it. Two clicks of one visitor on two replicas within those
 * milliseconds are both unflagged; a replica that (re)starts knows the other replicas' clicks
 * from then on only. When Redis is away the window is this replica's own.
 */
export function createSharedClickWindow(options: SharedClickWindowOptions): DuplicateClickDetector & Component & { window: ClickWindow } {
  const { redis, subscriber, channel } = options
  const now = options.now ?? Date.now
  const window = new ClickWindow(options.windowMs ?? DUPLICATE_CLICK_WINDOW_SECONDS * 1000)
  const replicaId = randomBytes(6).toString('base64url')
  // 10 ms: at most 100 PUBLISHes (and as many echoes to our own subscriber) per second,
  // against one per 2 ms before — each a socket write and a wake-up of Redis on the click path.
  const publishEveryMs = options.publishEveryMs ?? 10
  let outgoing: string[] = []
  /** When the first click of the batch was recorded (the others are at most a few ms younger). */
  let outgoingSince = 0
  let publishTimer: NodeJS.Timeout | undefined
  let expireTimer: NodeJS.Timeout | undefined

  function publish(): void {
    publishTimer = undefined
    if (outgoing.length === 0) return
    const message = `${replicaId} ${outgoingSince} ${outgoing.join(' ')}`
    outgoing = []
    redis.publish(channel, message).catch((err: unknown) => options.onRedisError?.(err))
  }

  function onMessage(from: string, message: string): void {
    if (from !== channel) return
    const parts = message.split(' ')
    if (parts[0] === replicaId) return
    const at = Number(parts[1])
    if (!Number.isFinite(at)) return
    for (let i = 2; i < parts.length; i++) window.remember(parts[i]!, at)
  }

  return {
    id: 'click-window',
    window,
    check(campaignId, ip, userAgent) {
      // No IP (an S2S click without one): nothing to compare.
      if (!ip) return { duplicate: false, remember: () => undefined }
      const key = visitorKey(campaignId, ip, userAgent)
      const duplicate = window.isDuplicate(key, now())
      return {
        duplicate,
        remember() {
          const at = now()
          window.remember(key, at)
          if (outgoing.length === 0) outgoingSince = at
          outgoing.push(key)
          publishTimer ??= setTimeout(publish, publishEveryMs)
        },
      }
    },
    async start() {
      subscriber.on('message', onMessage)
      await subscriber.connect()
      await subscriber.subscribe(channel)
      expireTimer = setInterval(() => window.expire(now()), 1_000)
      expireTimer.unref()
    },
    async stop() {
      if (expireTimer) clearInterval(expireTimer)
      if (publishTimer) clearTimeout(publishTimer)
      publish()
      subscriber.off('message', onMessage)
      await subscriber.quit().catch(() => subscriber.disconnect())
    },
    health: () => ({
      ok: true,
      ...(subscriber.status === 'ready' ? {} : { degraded: true }),
      detail: `${window.size} visitors in the window; shared: ${subscriber.status === 'ready' ? 'yes' : `no (${subscriber.status})`}`,
    }),
  }
}
