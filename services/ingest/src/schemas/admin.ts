import { Type } from '@sinclair/typebox'
import { Campaign, CampaignInput, CampaignPatch, PartnerInput } from '@clickjoin/campaigns'
import { CampaignId, errorResponses, publisherParams } from './common.ts'

export const IdParams = Type.Object({ id: CampaignId })

/** A partner as the admin API shows it: never the secret. */
export const PartnerView = Type.Object({
  id: Type.String(),
  ip_allowlist: Type.Array(Type.String()),
  updated_at: Type.Integer(),
})

const security = [{ adminToken: [] }]

export const putCampaignSchema = {
  summary: 'Create or replace a campaign',
  security,
  params: IdParams,
  body: CampaignInput,
  response: { 200: Campaign, ...errorResponses(400, 401) },
}
export const patchCampaignSchema = {
  summary: 'Change some fields of a campaign; the others keep their values',
  security,
  params: IdParams,
  body: CampaignPatch,
  response: { 200: Campaign, ...errorResponses(400, 401, 404) },
}
export const getCampaignSchema = {
  summary: 'A campaign',
  security,
  params: IdParams,
  response: { 200: Campaign, ...errorResponses(400, 401, 404) },
}
export const listCampaignsSchema = {
  summary: 'Every campaign',
  security,
  response: { 200: Type.Object({ campaigns: Type.Array(Campaign) }), ...errorResponses(401) },
}
export const putPartnerSchema = {
  summary: 'Create or replace a partner',
  security,
  params: IdParams,
  body: PartnerInput,
  response: { 200: PartnerView, ...errorResponses(400, 401) },
}
export const listPartnersSchema = {
  summary: 'Every partner (without secrets)',
  security,
  response: { 200: Type.Object({ partners: Type.Array(PartnerView) }), ...errorResponses(401) },
}
export const getPartnerSchema = {
  summary: 'A partner (without its secret)',
  security,
  params: IdParams,
  response: { 200: PartnerView, ...errorResponses(400, 401, 404) },
}
export const campaignLinkSchema = {
  summary: 'The personalized tracking link of a campaign',
  security,
  params: IdParams,
  querystring: Type.Object(publisherParams, { additionalProperties: false }),
  response: { 200: Type.Object({ url: Type.String() }), ...errorResponses(400, 401, 404) },
}
