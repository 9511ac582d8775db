import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { ClickV1 } from '@clickjoin/contracts'

/** How long an item's idempotency key answers the same click (SPEC §2). */
export const IDEMPOTENCY_SECONDS = 24 * 3600

/** The click first minted for a key, and whether Kafka has acknowledged it yet. */
export interface RememberedClick {
  event: ClickV1
  location: string
  recorded: boolean
}

export interface ClickIdempotency {
  /**
   * The click remembered for (partner, key): `candidate` when the key is new (it is now
   * remembered, not yet recorded), else the one minted the first time.
   */
  claim(partnerId: string, key: string, candidate: { event: ClickV1; location: string }): Promise<RememberedClick>
  /** Kafka acknowledged the click: a retry answers it without publishing again. */
  markRecorded(partnerId: string, key: string, click: RememberedClick): Promise<void>
}

/** Redis could not say whether a key was seen: the item cannot be answered safely (503). */
export class IdempotencyUnavailableError extends Error {
  constructor(cause: unknown) {
    super('idempotency keys cannot be checked (Redis did not answer)', { cause })
  }
}

/**
 * `idempotency_key` of POST /clicks through Redis, shared by every replica. The click event is
 * remembered *before* it is published, so a batch that failed half-way (503) and is retried
 * whole answers every item with the click ID minted the first time: an item Kafka acknowledged
 * is answered from memory; one it did not is published again with the same click ID — if the
 * first send did reach Kafka after all, the sink keeps one row per click ID. The key is a hash:
 * a partner's keys are not stored in the clear.
 */
export function createClickIdempotency(redis: Redis, keyPrefix: string): ClickIdempotency {
  const redisKey = (partnerId: string, key: string) =>
    `${keyPrefix}idem:${createHash('sha256').update(`${partnerId}\n${key}`).digest('base64url')}`
  const guard = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run()
    } catch (err) {
      throw new IdempotencyUnavailableError(err)
    }
  }
  return {
    claim: (partnerId, key, candidate) =>
      guard(async () => {
        const fresh: RememberedClick = { ...candidate, recorded: false }
        const at = redisKey(partnerId, key)
        const stored = await redis.set(at, JSON.stringify(fresh), 'EX', IDEMPOTENCY_SECONDS, 'NX')
        if (stored !== null) return fresh
        const earlier = await redis.get(at)
        // Expired between the two calls: this candidate is as good as any.
        if (earlier === null) return fresh
        return JSON.parse(earlier) as RememberedClick
      }),
    markRecorded: (partnerId, key, click) =>
      guard(async () => {
        await redis.set(redisKey(partnerId, key), JSON.stringify({ ...click, recorded: true }), 'KEEPTTL')
      }),
  }
}
