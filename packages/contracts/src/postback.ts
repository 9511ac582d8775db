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
} from './fields.ts'

/**
 * A conversion postback or pixel hit as ingest accepted it, published to the `conversions`
 * topic keyed by `conversionPartitionKey` (its conversion identity). Ingest has already applied the defaults it can (event
 * `conversion`, revenue "0", status `approved`, conversion time = received time); whether
 * the click ID is genuine is for the attributor to decide.
 */
export const PostbackV1 = Type.Object({
  v: Type.Literal(1),
  postback_id: Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH.postbackId }),
  received_at: EpochMs,
  channel: Type.Union([Type.Literal('postback'), Type.Literal('pixel'), Type.Literal('api')]),
  /** The authenticated partner; always '' for a pixel hit (the pixel has no partner, SPEC §3). */
  partner_id: boundedText(FIELD_MAX_LENGTH.partnerId),
  /**
   * The campaign whose pixel this is (`campaign=`): a pixel conversion counts only for a click
   * of that campaign. Absent on S2S postbacks, whose click alone names the campaign.
   */
  campaign_id: Type.Optional(boundedText(FIELD_MAX_LENGTH.campaignId)),
  click_id: ReceivedClickId,
  event: EventName,
  /** The partner's transaction ID, the deduplication key; '' when not sent. */
  txn_id: boundedText(FIELD_MAX_LENGTH.txnId),
  revenue: DecimalAmount,
  /**
   * '' when the partner sent none: the default is the campaign's currency, which only the
   * attributor knows once it has found the click.
   */
  currency: CurrencyOrUnset,
  status: ConversionStatus,
  conversion_ts: EpochMs,
})
export type PostbackV1 = Static<typeof PostbackV1>

export const postbackV1Contract = defineEventContract('PostbackV1', PostbackV1)

/**
 * The Kafka key of a postback on the `conversions` topic: its conversion identity (SPEC §5), so
 * every postback of one conversion lands on one partition and is decided in the order ingest
 * acknowledged it, whatever click IDs they name (a charge-back sent with another click ID).
 * `(partner, txn_id)` when a txn_id was sent — `(campaign, txn_id)` for a pixel, so a pixel can
 * never reach a partner's conversion nor another campaign's; otherwise the identity is within
 * one click ID (`(click_id, event)`, or one per postback for repeatable events), so the click
 * ID is the key. The producer hashes the key, so its length does not matter. Partner and
 * campaign IDs contain no ':', and the prefixes differ, so the forms never collide.
 */
export function conversionPartitionKey(
  postback: Pick<PostbackV1, 'channel' | 'partner_id' | 'campaign_id' | 'txn_id' | 'click_id'>,
): string {
  if (postback.txn_id === '') return postback.click_id
  return postback.channel === 'pixel' ? `c:${postback.campaign_id ?? ''}:${postback.txn_id}` : `t:${postback.partner_id}:${postback.txn_id}`
}
