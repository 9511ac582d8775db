import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { isbot } from 'isbot'
import type { IngestDeps } from '../app.ts'
import { isIpAddress, normalizeIp } from '../domain/client-ip.ts'
import { setCookieHeader } from '../domain/cookie.ts'
import { InvalidParameterError, parseTimestamp } from '../domain/conversion-params.ts'
import { authenticatePartner } from '../domain/partner-auth.ts'
import { sendError } from '../plugins/errors.ts'
import {
  ClickBatchItem,
  clickBatchSchema,
  trackingLinkByQuerySchema,
  trackingLinkSchema,
  type TrackingParams,
  type TrackingQuery,
  type TrackingQueryWithCampaign,
} from '../schemas/clicks.ts'
import { cachedBotCheck, CLICK_COOKIE, ClickRefused, passthroughParams, type ClickRecorder, type ClickRequest } from './click-recorder.ts'
import { takeFastPathFailure } from './fast-click.ts'
import { partnerCredentials } from './partner-credentials.ts'

const S2S_MAX_PAST_MS = 24 * 3600_000
const S2S_MAX_FUTURE_MS = 300_000
const clickBatchItemChecker = TypeCompiler.Compile(ClickBatchItem)

export async function clickRoutes(app: FastifyInstance, deps: IngestDeps & { clicks: ClickRecorder }): Promise<void> {
  const { configStore, metrics, settings, clicks } = deps
  const isBotAgent = cachedBotCheck()

  async function trackingLink(request: FastifyRequest, reply: FastifyReply, campaignId: string, params: TrackingQuery) {
    // The fast path (fast-click.ts) could not record this click: answer its error the usual way.
    const failure = takeFastPathFailure(request.raw)
    if (failure !== undefined) throw failure
    const wantsJson = params.format === 'json' || (request.headers.accept ?? '').includes('application/json')
    const campaign = configStore.campaign(campaignId)
    if (!campaign) {
      if (settings.unknownCampaignUrl) return redirect(reply, settings.unknownCampaignUrl, null, wantsJson, 'unknown_campaign')
      return sendError(reply, 404, 'unknown_campaign', `campaign ${campaignId} does not exist`)
    }
    if (campaign.status === 'paused') {
      // No attributable click: the visitor only goes to the fallback.
      if (campaign.fallback_url) return redirect(reply, campaign.fallback_url, null, wantsJson, 'campaign_paused')
      return sendError(reply, 404, 'campaign_paused', `campaign ${campaignId} is paused`)
    }
    const userAgent = request.headers['user-agent'] ?? ''
    try {
      const { clickId, location } = await clicks.record({
        campaign,
        params,
        clickTs: Date.now(),
        ip: request.ip,
        userAgent,
        referer: request.headers.referer ?? '',
        // Link unfurlers and prefetchers send HEAD: flagged, never dropped (SPEC §5).
        isBot: request.method === 'HEAD' || isBotAgent(userAgent),
        passthrough: campaign.passthrough ? passthroughParams(request.url) : [],
        browser: true,
      })
      reply.header('set-cookie', setCookieHeader(CLICK_COOKIE, clickId, campaign.window_seconds, request.protocol === 'https'))
      return redirect(reply, location, clickId, wantsJson, '')
    } catch (err) {
      if (err instanceof ClickRefused) return sendError(reply, err.status, err.code, err.message)
      throw err
    }
  }

  function redirect(reply: FastifyReply, location: string, clickId: string | null, wantsJson: boolean, reason: string) {
    reply.rejectReason = reason
    reply.header('cache-control', 'no-store')
    if (wantsJson) return reply.code(200).send({ click_id: clickId, location })
    return reply.code(302).header('location', location).send()
  }

  app.get<{ Params: TrackingParams; Querystring: TrackingQuery }>(
    '/c/:campaignId',
    { schema: trackingLinkSchema },
    (request, reply) => trackingLink(request, reply, request.params.campaignId, request.query),
  )
  app.get<{ Querystring: TrackingQueryWithCampaign }>('/c', { schema: trackingLinkByQuerySchema }, (request, reply) =>
    trackingLink(request, reply, request.query.campaign, request.query),
  )

  app.post<{ Body: unknown[] }>(
    '/clicks',
    { schema: clickBatchSchema, bodyLimit: 4 * 1024 * 1024 },
    async (request, reply) => {
      const auth = authenticatePartner(partnerCredentials(request), (id) => configStore.partner(id))
      if (!auth.ok) return sendError(reply, auth.status, auth.error, auth.message)
      const nowMs = Date.now()
      const results = await Promise.all(
        request.body.map(async (item, index) => {
          try {
            const click = s2sClick(item, index, nowMs)
            const key = (item as ClickBatchItem).idempotency_key
            const { clickId, location } = key === undefined ? await clicks.record(click) : await clicks.recordIdempotent(click, auth.partner.id, key)
            return { click_id: clickId, location }
          } catch (err) {
            if (err instanceof ClickRefused || err instanceof InvalidParameterError) {
              metrics.rejects.inc({ reason: err instanceof ClickRefused ? err.code : err.code })
              return { error: err instanceof ClickRefused ? err.code : err.code, message: err.message }
            }
            throw err // Kafka unavailable: the whole batch gets 503 and is retried
          }
        }),
      )
      return results
    },
  )

  function s2sClick(item: unknown, index: number, nowMs: number): ClickRequest {
    if (!clickBatchItemChecker.Check(item)) {
      const error = clickBatchItemChecker.Errors(item).First()
      const field = error?.path ? error.path.slice(1).replaceAll('/', '.') : 'item'
      throw new ClickRefused(400, 'invalid_parameter', `[${index}].${field}: ${error?.message ?? 'must be an object'}`)
    }
    const campaign = configStore.campaign(item.campaign_id)
    if (!campaign) throw new ClickRefused(404, 'unknown_campaign', `campaign ${item.campaign_id} does not exist`)
    if (campaign.status === 'paused') throw new ClickRefused(409, 'campaign_paused', `campaign ${item.campaign_id} is paused`)
    const ip = item.ip ? normalizeIp(item.ip.trim()) : ''
    if (ip && !isIpAddress(ip)) throw new ClickRefused(400, 'invalid_parameter', `[${index}].ip: must be an IPv4 or IPv6 address`)
    const clickTs = parseTimestamp(`[${index}].ts`, item.ts, nowMs, { maxFutureMs: S2S_MAX_FUTURE_MS, maxPastMs: S2S_MAX_PAST_MS })
    const userAgent = item.ua ?? ''
    return {
      campaign,
      params: item,
      clickTs: clickTs ?? nowMs,
      ip,
      userAgent,
      referer: '',
      isBot: isbot(userAgent),
      passthrough: [],
    }
  }
}
