import { Type } from '@sinclair/typebox'
import { FIELD_MAX_LENGTH } from '@clickjoin/contracts'

/** Every refusal's body. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'a stable machine-readable code, e.g. invalid_parameter' }),
    message: Type.String({ description: 'what is wrong, naming the field' }),
  },
  { $id: 'ErrorBody' },
)

export const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [s, Type.Ref('ErrorBody')]))

export const text = (maxLength: number, description?: string) =>
  Type.String(description === undefined ? { maxLength } : { maxLength, description })

/** The publisher parameters a tracking link, an S2S click and the link builder share (SPEC §2). */
export const publisherParams = {
  pub: Type.Optional(text(FIELD_MAX_LENGTH.publisherId, 'publisher / affiliate ID')),
  sub1: Type.Optional(text(FIELD_MAX_LENGTH.subId, "publisher's sub ID 1")),
  sub2: Type.Optional(text(FIELD_MAX_LENGTH.subId)),
  sub3: Type.Optional(text(FIELD_MAX_LENGTH.subId)),
  sub4: Type.Optional(text(FIELD_MAX_LENGTH.subId)),
  sub5: Type.Optional(text(FIELD_MAX_LENGTH.subId)),
  src: Type.Optional(text(FIELD_MAX_LENGTH.source, 'traffic source')),
  cr: Type.Optional(text(FIELD_MAX_LENGTH.creative, 'creative')),
  uid: Type.Optional(text(FIELD_MAX_LENGTH.userKey, 'a first-party user key')),
}

export const CampaignId = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,64}$',
  description: 'campaign ID: 1–64 characters A–Z a–z 0–9 _ -',
})
