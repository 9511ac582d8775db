import { createHash } from 'node:crypto'
import type { Redis } from 'ioredis'
import { SIGNATURE_TOLERANCE_SECONDS } from './partner-auth.ts'

/**
 * How long a signed request is remembered: its signature is valid from t − 300 s to t + 300 s,
 * so remembering it for 600 s from now (plus a margin) outlasts every moment it could be replayed.
 */
const REMEMBER_SECONDS = 2 * SIGNATURE_TOLERANCE_SECONDS + 10

export type SignatureClaim =
  /** Nobody sent this signed request before: record it, then settle the claim. */
  | { kind: 'first'; settle(stored: boolean): Promise<void> }
  /** Already recorded: answer `duplicate` (SPEC §3). */
  | { kind: 'duplicate' }
  /** The same request is being recorded right now (a retry racing its original): retry later. */
  | { kind: 'in_flight' }

export interface SignatureReplayGuard {
  claim(partnerId: string, timestamp: number, signedPayload: string): Promise<SignatureClaim>
}

/**
 * A signed postback is accepted once (SPEC §3), on every replica, through Redis: the first
 * request claims `pending`; once Kafka acknowledged it the claim becomes `done`, and a repeat
 * answers `duplicate`. When Kafka refused it the claim is dropped, so the partner's retry is
 * recorded — a claim never stands in for an event that was not stored. The key is a hash of
 * what the signature covers (partner, t, payload): the same request, whatever v1 list it sends.
 */
export function createSignatureReplayGuard(redis: Redis, keyPrefix: string): SignatureReplayGuard {
  return {
    async claim(partnerId, timestamp, signedPayload) {
      const hash = createHash('sha256').update(`${partnerId}\n${timestamp}\n${signedPayload}`).digest('base64url')
      const key = `${keyPrefix}sig:${hash}`
      const claimed = await redis.set(key, 'pending', 'EX', REMEMBER_SECONDS, 'NX')
      if (claimed === null) return (await redis.get(key)) === 'done' ? { kind: 'duplicate' } : { kind: 'in_flight' }
      return {
        kind: 'first',
        settle: async (stored) => {
          if (stored) await redis.set(key, 'done', 'EX', REMEMBER_SECONDS)
          else await redis.del(key)
        },
      }
    },
  }
}
