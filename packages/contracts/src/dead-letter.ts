import { isUtf8 } from 'node:buffer'
import { Type, type Static } from '@sinclair/typebox'
import { encodeEvent } from './codec.ts'
import { defineEventContract } from './contract.ts'
import { boundedText, EpochMs } from './fields.ts'

const MAX_REASON_LENGTH = 1024
const MAX_KEY_LENGTH = 1024
// Large enough for the base64 of any message the consumers accept (4 MiB per partition fetch).
const MAX_PAYLOAD_LENGTH = 8 * 1024 * 1024

/**
 * A message a consumer could not process, with why, published to the dead-letter topic under
 * its original key so it can be inspected and replayed. Nothing is dropped silently.
 */
export const DeadLetterV1 = Type.Object({
  v: Type.Literal(1),
  source_topic: Type.String({ minLength: 1, maxLength: 249 }),
  partition: Type.Integer({ minimum: 0, maximum: 2_147_483_647 }),
  /** Kafka offsets are int64: kept as a decimal string. */
  offset: Type.String({ pattern: '^[0-9]{1,19}$' }),
  /** The message key as UTF-8 text; '' when it had none. */
  key: boundedText(MAX_KEY_LENGTH),
  reason: boundedText(MAX_REASON_LENGTH),
  /** The raw message value: as text when it was valid UTF-8, else base64. */
  payload: boundedText(MAX_PAYLOAD_LENGTH),
  payload_encoding: Type.Union([Type.Literal('utf8'), Type.Literal('base64')]),
  failed_at: EpochMs,
})
export type DeadLetterV1 = Static<typeof DeadLetterV1>

export const deadLetterV1Contract = defineEventContract('DeadLetterV1', DeadLetterV1)

export interface FailedMessage {
  sourceTopic: string
  partition: number
  offset: string
  key: Uint8Array | null
  value: Uint8Array | null
  reason: string
}

/** The dead letter for a message that failed, keeping its bytes intact. */
export function deadLetterFor(failed: FailedMessage, failedAtMs: number = Date.now()): DeadLetterV1 {
  const value = failed.value ?? new Uint8Array(0)
  const readable = isUtf8(value)
  return {
    v: 1,
    source_topic: failed.sourceTopic,
    partition: failed.partition,
    offset: failed.offset,
    key: failed.key === null ? '' : Buffer.from(failed.key).toString('utf8').slice(0, MAX_KEY_LENGTH),
    reason: failed.reason.slice(0, MAX_REASON_LENGTH),
    payload: Buffer.from(value).toString(readable ? 'utf8' : 'base64'),
    payload_encoding: readable ? 'utf8' : 'base64',
    failed_at: failedAtMs,
  }
}

/**
 * The dead-letter topic's message for a failed one: keyed like the original (so it lands on
 * the same partition number), the value the encoded DeadLetterV1. What every consumer sends.
 */
export function deadLetterMessage(failed: FailedMessage, failedAtMs: number = Date.now()): { key: string; value: Buffer } {
  const deadLetter = deadLetterFor(failed, failedAtMs)
  return { key: deadLetter.key, value: encodeEvent(deadLetterV1Contract, deadLetter) }
}

/** The original message value of a dead letter, for replay. */
export function deadLetterPayload(deadLetter: DeadLetterV1): Buffer {
  return Buffer.from(deadLetter.payload, deadLetter.payload_encoding)
}
