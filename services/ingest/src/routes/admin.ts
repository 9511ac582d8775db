import type { FastifyInstance } from 'fastify'
import {
  campaignFromInput,
  campaignInputOf,
  campaignInputProblem,
  partnerFromInput,
  type CampaignInput,
  type CampaignPatch,
  type Partner,
  type PartnerInput,
} from '@clickjoin/campaigns'
import type { IngestDeps } from '../app.ts'
import { parseAllowListEntry } from '../domain/client-ip.ts'
import { secretsEqual } from '../domain/partner-auth.ts'
import { sendError } from '../plugins/errors.ts'
import { adminPublisherRoutes } from './admin-publishers.ts'
import {
  campaignLinkSchema,
  getCampaignSchema,
  getPartnerSchema,
  listCampaignsSchema,
  listPartnersSchema,
  patchCampaignSchema,
  putCampaignSchema,
  putPartnerSchema,
} from '../schemas/admin.ts'

type Id = { Params: { id: string } }

function partnerView(partner: Partner) {
  return { id: partner.id, ip_allowlist: partner.ip_allowlist, updated_at: partner.updated_at }
}

/** Admin API (SPEC §4), behind `Authorization: Bearer <ADMIN_TOKEN>`; mounted under /admin. */
export async function adminRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  const { configStore, settings } = deps

  app.addHook('onRequest', async (request, reply) => {
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')
    if (!match || !secretsEqual(match[1]!.trim(), settings.adminToken)) {
      reply.header('www-authenticate', 'Bearer realm="clickjoin-admin"')
      return sendError(reply, 401, 'unauthorized', 'send Authorization: Bearer <ADMIN_TOKEN>')
    }
  })

  await app.register(adminPublisherRoutes, { publishers: deps.publishers })

  app.put<Id & { Body: CampaignInput }>('/campaigns/:id', { schema: putCampaignSchema }, async (request, reply) => {
    const problem = campaignInputProblem(request.body)
    if (problem) return sendError(reply, 400, 'invalid_parameter', problem)
    const campaign = campaignFromInput(request.params.id, request.body)
    await configStore.putCampaign(campaign)
    return campaign
  })

  // Only the fields given change (SPEC §4); the result is checked like a PUT of the whole.
  app.patch<Id & { Body: CampaignPatch }>('/campaigns/:id', { schema: patchCampaignSchema }, async (request, reply) => {
    const current = configStore.campaign(request.params.id)
    if (!current) return sendError(reply, 404, 'not_found', `campaign ${request.params.id} does not exist`)
    const problem = campaignInputProblem(request.body)
    if (problem) return sendError(reply, 400, 'invalid_parameter', problem)
    const campaign = campaignFromInput(request.params.id, { ...campaignInputOf(current), ...request.body })
    await configStore.putCampaign(campaign)
    return campaign
  })

  app.get<Id>('/campaigns/:id', { schema: getCampaignSchema }, async (request, reply) => {
    const campaign = configStore.campaign(request.params.id)
    return campaign ?? sendError(reply, 404, 'not_found', `campaign ${request.params.id} does not exist`)
  })

  app.get('/campaigns', { schema: listCampaignsSchema }, async () => ({
    campaigns: configStore.campaigns().sort((a, b) => a.id.localeCompare(b.id)),
  }))

  app.get<Id & { Querystring: Record<string, string> }>(
    '/campaigns/:id/link',
    { schema: campaignLinkSchema },
    async (request, reply) => {
      const campaign = configStore.campaign(request.params.id)
      if (!campaign) return sendError(reply, 404, 'not_found', `campaign ${request.params.id} does not exist`)
      const query = new URLSearchParams(Object.entries(request.query).filter(([, v]) => v !== ''))
      const search = query.size > 0 ? `?${query.toString()}` : ''
      return { url: `${settings.publicUrl}/c/${encodeURIComponent(campaign.id)}${search}` }
    },
  )

  app.put<Id & { Body: PartnerInput }>('/partners/:id', { schema: putPartnerSchema }, async (request, reply) => {
    const bad = (request.body.ip_allowlist ?? []).findIndex((entry) => !parseAllowListEntry(entry))
    if (bad >= 0) {
      return sendError(reply, 400, 'invalid_parameter', `ip_allowlist.${bad}: must be an IP address or CIDR range`)
    }
    const partner = partnerFromInput(request.params.id, request.body)
    await configStore.putPartner(partner)
    return partnerView(partner)
  })

  app.get('/partners', { schema: listPartnersSchema }, async () => ({
    partners: configStore
      .partners()
      .sort((a, b) => a.id.localeCompare(b.id))
      .map(partnerView),
  }))

  app.get<Id>('/partners/:id', { schema: getPartnerSchema }, async (request, reply) => {
    const partner = configStore.partner(request.params.id)
    return partner ? partnerView(partner) : sendError(reply, 404, 'not_found', `partner ${request.params.id} does not exist`)
  })
}
