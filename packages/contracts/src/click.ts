import { Type, type Static } from '@sinclair/typebox'
import { defineEventContract } from './contract.ts'
import { boundedText, EpochMs, FIELD_MAX_LENGTH, GeneratedClickId, subIdFields, WindowSeconds } from './fields.ts'

/**
 * A recorded click, as ingest publishes it to the `clicks` topic (keyed by `click_id`) before
 * answering the request. Optional request parameters are '' when absent, like the
 * non-nullable ClickHouse columns they land in. Unknown extra fields are tolerated so a
 * field can be added without breaking consumers that do not know it yet.
 */
export const ClickV1 = Type.Object({
  v: Type.Literal(1),
  click_id: GeneratedClickId,
  /** When the click happened (ms): the request time, or the `ts` an S2S click carried. */
  ts: EpochMs,
  campaign_id: Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH.campaignId }),
  publisher_id: boundedText(FIELD_MAX_LENGTH.publisherId),
  ...subIdFields,
  source: boundedText(FIELD_MAX_LENGTH.source),
  creative: boundedText(FIELD_MAX_LENGTH.creative),
  user_key: boundedText(FIELD_MAX_LENGTH.userKey),
  /** Already anonymized (IPv4 /24, IPv6 /48); '' when unknown. */
  ip: boundedText(FIELD_MAX_LENGTH.ip),
  user_agent: boundedText(FIELD_MAX_LENGTH.userAgent),
  referer: boundedText(FIELD_MAX_LENGTH.referer),
  /** The final redirect target, macros replaced. */
  destination: boundedText(FIELD_MAX_LENGTH.destination),
  is_bot: Type.Boolean(),
  is_duplicate: Type.Boolean(),
  /** The campaign's attribution window at click time. */
  window_seconds: WindowSeconds,
  /**
   * The longest window of the campaign or any of its events, so the attributor can keep the
   * click exactly as long as some conversion could still join it, without a config lookup.
   */
  max_window_seconds: WindowSeconds,
})
export type ClickV1 = Static<typeof ClickV1>

export const clickV1Contract = defineEventContract('ClickV1', ClickV1)
