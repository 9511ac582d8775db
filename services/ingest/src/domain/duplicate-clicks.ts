import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'

/** Same campaign, IP and user agent within this many seconds: a duplicate click (SPEC §5). */
export const DUPLICATE_CLICK_WINDOW_SECONDS = 60

export interface DuplicateClickDetector {
  /** True when the same campaign, IP and user agent clicked within the last 60 s. */
  isDuplicate(campaignId: string, ip: string, userAgent: string): Promise<boolean>
}

/**
 * Shared by every replica through Redis (`SET … NX EX 60`: the first click of the minute wins).
 * The key is a hash, so no IP sits in Redis. A flag must never cost the click: when Redis does
 * not answer, the click is recorded as not duplicate.
 */
export function createDuplicateClickDetector(
  redis: Redis,
  keyPrefix: string,
  onRedisError: (err: unknown) => void = () => undefined,
): DuplicateClickDetector {
  return {
    async isDuplicate(campaignId, ip, userAgent) {
      if (!ip) return false
      const hash = createHash('sha256').update(`${campaignId}\n${ip}\n${userAgent}`).digest('base64url')
      try {
        const set = await redis.set(`${keyPrefix}dup:${hash}`, '1', 'EX', DUPLICATE_CLICK_WINDOW_SECONDS, 'NX')
        return set === null
      } catch (err) {
        onRedisError(err)
        return false
      }
    },
  }
}
