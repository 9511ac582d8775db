import { Type, type Static } from '@sinclair/typebox'
import { defineEventContract } from './contract.ts'
import { boundedText, EpochMs, FIELD_MAX_LENGTH } from './fields.ts'

/**
 * One attempt of the dispatcher to call a publisher's postback URL (SPEC §5b), published to
 * the deliveries topic keyed by `conversion_id`; one row of `postback_deliveries`. An attempt
 * repeated after a crash (the call was made, the record was not) carries the same
 * `delivery_id`, so the table keeps one row for it.
 */
export const PostbackDeliveryV1 = Type.Object({
  v: Type.Literal(1),
  /** `<job_id>:<attempt>`. */
  delivery_id: Type.String({ minLength: 1, maxLength: 512 }),
  /** The pending delivery this attempt belongs to: one per matching rule and conversion version. */
  job_id: Type.String({ minLength: 1, maxLength: 400 }),
  /** `<conversion_id>:<version>`, the Standard Webhooks `webhook-id`, the same on every retry. */
  webhook_id: Type.String({ minLength: 1, maxLength: 160 }),
  conversion_id: Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH.conversionId }),
  version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  publisher_id: boundedText(FIELD_MAX_LENGTH.publisherId),
  campaign_id: boundedText(FIELD_MAX_LENGTH.campaignId),
  /** The URL called, macros expanded; never a secret of ours. */
  url: Type.String({ maxLength: 16_384 }),
  method: Type.Union([Type.Literal('GET'), Type.Literal('POST')]),
  /** 1 for the first call. */
  attempt: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
  /** The HTTP status; 0 when no response came (timeout, connection error, refused). */
  status_code: Type.Integer({ minimum: 0, maximum: 999 }),
  duration_ms: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  /** '' when delivered. */
  error: boundedText(1024),
  state: Type.Union([Type.Literal('delivered'), Type.Literal('retrying'), Type.Literal('failed'), Type.Literal('refused')]),
  sent_at: EpochMs,
  /** When the next attempt is due; 0 unless retrying. */
  next_attempt_at: EpochMs,
})
export type PostbackDeliveryV1 = Static<typeof PostbackDeliveryV1>

export const postbackDeliveryV1Contract = defineEventContract('PostbackDeliveryV1', PostbackDeliveryV1)
