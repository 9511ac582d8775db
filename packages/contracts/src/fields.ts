import { Type } from '@sinclair/typebox'

/**
 * Longest value, in characters, of each text field. Producers cut free text (user agent,
 * referer) to these lengths and reject identifiers that exceed them; the contracts enforce them.
 */
export const FIELD_MAX_LENGTH = {
  clickId: 32,
  /** A click ID as a partner sent it back: checked for genuineness downstream, not here. */
  receivedClickId: 128,
  campaignId: 64,
  partnerId: 64,
  publisherId: 128,
  /** Publishers put their own click IDs here (gclid, fbclid…), which run to a few hundred. */
  subId: 512,
  source: 256,
  creative: 256,
  userKey: 256,
  ip: 45,
  userAgent: 1024,
  referer: 2048,
  destination: 8192,
  event: 32,
  txnId: 128,
  postbackId: 64,
  conversionId: 128,
} as const

/** Milliseconds since the unix epoch. */
export const EpochMs = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

export const GeneratedClickId = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,32}$',
  description: 'a click ID: 1–32 characters A–Z a–z 0–9 _ -',
})

export const ReceivedClickId = Type.String({ minLength: 1, maxLength: FIELD_MAX_LENGTH.receivedClickId })

export const EventName = Type.String({ pattern: '^[a-z0-9_]{1,32}$', description: '1–32 characters a–z 0–9 _' })

/**
 * Money travels as a decimal string, never a float: ≥ 0, at most 12 integer digits and 6
 * fraction digits, which is exactly what ClickHouse Decimal(18,6) holds.
 */
export const DecimalAmount = Type.String({
  pattern: '^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,6})?$',
  description: 'a decimal ≥ 0 with at most 12 integer and 6 fraction digits, e.g. "12.5"',
})

/** ISO 4217 code, or '' where none is known yet (see the contracts that allow it). */
export const CurrencyOrUnset = Type.String({
  pattern: '^([A-Z]{3})?$',
  description: 'an ISO 4217 code of 3 uppercase letters, or empty',
})

export const ConversionStatus = Type.Union([Type.Literal('approved'), Type.Literal('pending'), Type.Literal('rejected')])

export const WindowSeconds = Type.Integer({ minimum: 1, maximum: 2_147_483_647 })

export function boundedText(maxLength: number) {
  return Type.String({ maxLength })
}

/** The publisher's sub IDs as both clicks and conversions carry them; '' when absent. */
export const subIdFields = {
  sub1: boundedText(FIELD_MAX_LENGTH.subId),
  sub2: boundedText(FIELD_MAX_LENGTH.subId),
  sub3: boundedText(FIELD_MAX_LENGTH.subId),
  sub4: boundedText(FIELD_MAX_LENGTH.subId),
  sub5: boundedText(FIELD_MAX_LENGTH.subId),
}
