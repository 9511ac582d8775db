import { Type, type Static } from '@sinclair/typebox'
import { FIELD_MAX_LENGTH } from '@clickjoin/contracts'
import { CampaignId, errorResponses, text } from './common.ts'

/**
 * Postback parameters (SPEC §3), as query, form or JSON fields. Shapes and lengths are checked
 * here; what needs more than a pattern (required-ness across query and body, revenue range,
 * known currency, time bounds) is checked in the route, with the same 400 answer.
 */
export const PostbackFields = Type.Object({
  click_id: Type.Optional(text(FIELD_MAX_LENGTH.receivedClickId, 'the click ID from the landing URL (required)')),
  partner: Type.Optional(text(FIELD_MAX_LENGTH.partnerId, 'partner ID, or header X-Clickjoin-Partner')),
  token: Type.Optional(text(256, "the partner's secret, or header X-Clickjoin-Token")),
  event: Type.Optional(Type.String({ pattern: '^[a-z0-9_]{1,32}$', description: '1–32 characters a–z 0–9 _; default conversion' })),
  txn_id: Type.Optional(text(FIELD_MAX_LENGTH.txnId, "the partner's transaction ID (deduplication key)")),
  revenue: Type.Optional(text(32, 'decimal ≥ 0, up to 6 fraction digits; default 0')),
  currency: Type.Optional(text(3, 'ISO 4217 code; default the campaign currency')),
  status: Type.Optional(
    Type.Union([Type.Literal('approved'), Type.Literal('pending'), Type.Literal('rejected')], {
      description: 'approved (default), pending or rejected',
    }),
  ),
  ts: Type.Optional(text(40, 'conversion time: unix seconds or ISO 8601; at most 300 s ahead')),
})
export type PostbackFields = Static<typeof PostbackFields>

export const PostbackAccepted = Type.Object({
  status: Type.Literal('accepted'),
  postback_id: Type.String(),
})

/** A signed request seen before within its window (a retry or a replay): nothing new recorded. */
export const PostbackDuplicate = Type.Object({ status: Type.Literal('duplicate') })

const postbackResponses = {
  200: Type.Union([PostbackAccepted, PostbackDuplicate]),
  ...errorResponses(400, 401, 403, 413, 415, 503),
}

export const postbackGetSchema = {
  summary: 'Conversion postback (query parameters)',
  querystring: PostbackFields,
  response: postbackResponses,
}

export const postbackPostSchema = {
  summary: 'Conversion postback (form or JSON body; query parameters also read)',
  querystring: PostbackFields,
  body: PostbackFields,
  response: postbackResponses,
}

export const PixelQuery = Type.Object({
  ...PostbackFields.properties,
  campaign: Type.Optional(Type.String({ ...CampaignId, description: 'the campaign whose pixel this is (required)' })),
})
export type PixelQuery = Static<typeof PixelQuery>

const gifResponse = {
  description: 'a 1×1 transparent GIF; header X-Clickjoin-Result says accepted or why not',
  content: { 'image/gif': { schema: { type: 'string', format: 'binary' } } },
}

/**
 * The pixel's query as the document states it: any text. The pixel refuses nothing (it always
 * answers the GIF, SPEC §3); what it cannot record it says in X-Clickjoin-Result, after checking
 * the query against PixelQuery itself.
 */
const PixelQueryAsDocumented = Type.Object(
  Object.fromEntries(Object.keys(PixelQuery.properties).map((name) => [name, Type.Optional(Type.String())])),
)

export const pixelSchema = {
  summary: 'Browser conversion pixel: always a 1×1 GIF',
  description:
    'Needs campaign=<id>; click_id defaults to the cj_cid cookie; partner is ignored (the pixel has no partner). ' +
    'It counts only for a click of that campaign while the campaign has pixel_enabled, else it is recorded as a ' +
    'rejected conversion (campaign_mismatch, pixel_disabled). Its identity is (campaign, txn_id).',
  querystring: PixelQueryAsDocumented,
  response: { 200: gifResponse, 503: gifResponse },
}

export const pixelHeadSchema = {
  summary: 'The pixel for link checkers: the GIF headers, nothing recorded',
  querystring: PixelQueryAsDocumented,
  response: { 200: gifResponse },
}
