import { Type, type Static } from '@sinclair/typebox'
import { FIELD_MAX_LENGTH } from '@clickjoin/contracts'
import { CampaignId, errorResponses, publisherParams, text } from './common.ts'

/** Query of a tracking link; other parameters are allowed (passed through when the campaign says so). */
export const TrackingQuery = Type.Object({
  ...publisherParams,
  format: Type.Optional(Type.Literal('json', { description: 'answer 200 {click_id, location} instead of 302' })),
})
export type TrackingQuery = Static<typeof TrackingQuery>

export const TrackingQueryWithCampaign = Type.Object({ campaign: CampaignId, ...TrackingQuery.properties })
export type TrackingQueryWithCampaign = Static<typeof TrackingQueryWithCampaign>

export const TrackingParams = Type.Object({ campaignId: CampaignId })
export type TrackingParams = Static<typeof TrackingParams>

export const ClickAnswer = Type.Object({
  click_id: Type.Union([Type.String(), Type.Null()], { description: 'null when the campaign is paused' }),
  location: Type.String(),
})

const trackingResponses = {
  200: ClickAnswer,
  302: Type.Null({ description: 'redirect to the destination; sets cookie cj_cid' }),
  ...errorResponses(400, 404, 503),
}

export const trackingLinkSchema = {
  summary: 'Tracking link: records a click and redirects to the campaign destination',
  params: TrackingParams,
  querystring: TrackingQuery,
  response: trackingResponses,
}

export const trackingLinkByQuerySchema = {
  summary: 'Tracking link with the campaign ID as a parameter',
  querystring: TrackingQueryWithCampaign,
  response: trackingResponses,
}

/** One S2S click (POST /clicks); checked per item, so one bad item does not fail the batch. */
export const ClickBatchItem = Type.Object({
  campaign_id: CampaignId,
  ...publisherParams,
  ip: Type.Optional(text(64, "the clicking user's IP (stored anonymized)")),
  ua: Type.Optional(text(8192, "the clicking user's user agent")),
  ts: Type.Optional(
    Type.Union([Type.Number(), text(40)], {
      description: 'click time: unix seconds or ISO 8601; at most 300 s ahead and 24 h back',
    }),
  ),
  idempotency_key: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 128,
      description: 'retried by the same partner within 24 h, the item answers the same click_id and is recorded once',
    }),
  ),
})
export type ClickBatchItem = Static<typeof ClickBatchItem>

export const MAX_CLICK_BATCH_ITEMS = 1_000

export const clickBatchSchema = {
  summary: 'S2S batch click registration (partner credentials as for postbacks)',
  querystring: Type.Object({
    partner: Type.Optional(text(FIELD_MAX_LENGTH.partnerId)),
    token: Type.Optional(text(256)),
  }),
  body: Type.Array(Type.Unknown({ description: 'an item like ClickBatchItem' }), {
    minItems: 1,
    maxItems: MAX_CLICK_BATCH_ITEMS,
    description: `up to ${MAX_CLICK_BATCH_ITEMS} items {campaign_id, pub?, sub1..sub5?, src?, cr?, uid?, ip?, ua?, ts?, idempotency_key?}`,
  }),
  response: {
    200: Type.Array(
      Type.Union([
        Type.Object({ click_id: Type.String(), location: Type.String() }),
        Type.Object({ error: Type.String(), message: Type.String() }),
      ]),
    ),
    ...errorResponses(400, 401, 403, 413, 503),
  },
}
