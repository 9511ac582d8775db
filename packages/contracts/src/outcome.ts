import { Type, type Static } from '@sinclair/typebox'
import { defineEventContract } from './contract.ts'
import {
  boundedText,
  ConversionStatus,
  CurrencyOrUnset,
  DecimalAmount,
  EpochMs,
  EventName,
  FIELD_MAX_LENGTH,
  ReceivedClickId,
  subIdFields,
} from './fields.ts'

/**
 * The attributor's decision about one conversion, published to the outcomes topic keyed by
 * `click_id`; one row of the `conversions` table. A status update re-publishes the whole
 * conversion with a higher `version`, so the table keeps the latest one.
 */
export const OutcomeV1 = Type.Object({
  v: Type.Literal(1),
  /** Stable for the conversion's identity: (partner, txn_id), (click_id, event) or the postback. */
  conversion_id: Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH.conversionId }),
  /** Increases with every change to this conversion; the highest version wins downstream. */
  version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  /** The postback that produced this version. */
  postback_id: Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH.postbackId }),
  click_id: ReceivedClickId,
  partner_id: boundedText(FIELD_MAX_LENGTH.partnerId),
  event: EventName,
  txn_id: boundedText(FIELD_MAX_LENGTH.txnId),
  status: ConversionStatus,
  outcome: Type.Union([Type.Literal('attributed'), Type.Literal('rejected')]),
  /** '' when attributed. */
  reason: Type.Union([
    Type.Literal(''),
    Type.Literal('unknown_click'),
    Type.Literal('invalid_click_id'),
    Type.Literal('expired'),
    Type.Literal('before_click'),
    /** A pixel naming another campaign than its click's. */
    Type.Literal('campaign_mismatch'),
    /** A pixel of a campaign without pixel_enabled. */
    Type.Literal('pixel_disabled'),
  ]),
  /** The click's campaign and publisher fields; '' when no click was found. */
  campaign_id: boundedText(FIELD_MAX_LENGTH.campaignId),
  publisher_id: boundedText(FIELD_MAX_LENGTH.publisherId),
  ...subIdFields,
  /** 0 when no click was found. */
  click_ts: EpochMs,
  conversion_ts: EpochMs,
  /**
   * Click-to-install/conversion time, conversion_ts − click_ts; 0 when no click was found or
   * the conversion is before its click (never negative since issue 10; the schema still reads
   * older messages that carried a negative value).
   */
  ctit_ms: Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }),
  revenue: DecimalAmount,
  /** What the publisher earns: "0" unless attributed and approved. */
  payout: DecimalAmount,
  /** The postback's currency, else the campaign's; '' only when neither is known. */
  currency: CurrencyOrUnset,
  is_fast: Type.Boolean(),
  updated_at: EpochMs,
})
export type OutcomeV1 = Static<typeof OutcomeV1>

export const outcomeV1Contract = defineEventContract('OutcomeV1', OutcomeV1)
