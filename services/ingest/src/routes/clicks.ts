import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { isbot } from 'isbot'
import { longestWindow, type Campaign } from '@clickjoin/campaigns'
import { generateClickId } from '@clickjoin/click-id'
import { FIELD_MAX_LENGTH, type ClickV1 } from '@clickjoin/contracts'
import type { IngestDeps } from '../app.ts'
import { anonymizeIp, isIpAddress, normalizeIp } from '../domain/client-ip.ts'
import { setCookieHeader } from '../domain/cookie.ts'
import { InvalidParameterError, parseTimestamp } from '../domain/conversion-params.ts'
import { expandDestination, UnsafeDestinationError, type MacroValues } from '../domain/destination.ts'
import { authenticatePartner } from '../domain/partner-auth.ts'
import { truncateText } from '../domain/text.ts'
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
import { partnerCredentials } from './partner-credentials.ts'

/** Parameters with a meaning of their own: never passed through to the destination. */
const RESERVED_PARAMS = new Set(['campaign', 'pub', 'sub1', 'sub2', 'sub3', 'sub4', 'sub5', 'src', 'cr', 'uid', 'format'])

export const CLICK_COOKIE = 'cj_cid'
const S2S_MAX_PAST_MS = 24 * 3600_000
const S2S_MAX_FUTURE_MS = 300_000
const clickBatchItemChecker = TypeCompiler.Compile(ClickBatchItem)

interface ClickRequest {
  campaign: Campaign
  params: TrackingQuery
  clickTs: number
  ip: string
  userAgent: string
  referer: string
  isBot: boolean
  passthrough: ReadonlyArray<readonly [string, string]>
  /** A visitor's tracking link: during a Kafka outage the click goes to the local journal. */
  browser?: boolean
}

/** A click that could not be recorded because of its parameters. */
class ClickRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export async function clickRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  const { configStore, events, duplicates, keyring, metrics, settings, clickIdempotency } = deps
  const isBotAgent = cachedBotCheck()
  const clickPublished = metrics.publishedCounts.child({ kind: 'click' })

  /** Builds the destination and publishes the click; resolves once Kafka acknowledged it. */
  async function recordClick(click: ClickRequest): Promise<{ clickId: string; location: string }> {
    const { event, location, remember } = clickEvent(click)
    await events.click(event, { browser: click.browser === true })
    // Only a recorded click counts for the window: a retry after a 503 is not a duplicate.
    remember()
    clickPublished()
    return { clickId: event.click_id, location }
  }

  /**
   * An S2S item with an idempotency key: the click first minted for the key, published unless
   * Kafka already acknowledged it (SPEC §2: a half-failed batch can be retried whole).
   */
  async function recordIdempotentClick(click: ClickRequest, partnerId: string, key: string): Promise<{ clickId: string; location: string }> {
    const candidate = clickEvent(click)
    const remembered = await clickIdempotency.claim(partnerId, key, candidate)
    if (!remembered.recorded) {
      await events.click(remembered.event)
      clickPublished()
      await clickIdempotency.markRecorded(partnerId, key, remembered)
    }
    candidate.remember()
    return { clickId: remembered.event.click_id, location: remembered.location }
  }

  /**
   * The click event of a request, where it sends the visitor, and how to enter it in the
   * duplicate-click window once it is recorded.
   */
  function clickEvent(click: ClickRequest): { event: ClickV1; location: string; remember: () => void } {
    const { campaign, params } = click
    const clickId = generateClickId(keyring, Date.now())
    const values: MacroValues = {
      click_id: clickId,
      campaign_id: campaign.id,
      pub: params.pub ?? '',
      sub1: params.sub1 ?? '',
      sub2: params.sub2 ?? '',
      sub3: params.sub3 ?? '',
      sub4: params.sub4 ?? '',
      sub5: params.sub5 ?? '',
      src: params.src ?? '',
      cr: params.cr ?? '',
    }
    let location: string
    try {
      location = expandDestination(campaign, values, click.passthrough)
    } catch (err) {
      if (err instanceof UnsafeDestinationError) throw new ClickRefused(400, 'unsafe_destination', err.message)
      throw err
    }
    if (location.length > FIELD_MAX_LENGTH.destination) {
      throw new ClickRefused(414, 'destination_too_long', `the destination URL would exceed ${FIELD_MAX_LENGTH.destination} characters`)
    }
    const duplicate = duplicates.check(campaign.id, click.ip, click.userAgent)
    const event: ClickV1 = {
      v: 1,
      click_id: clickId,
      ts: click.clickTs,
      campaign_id: campaign.id,
      publisher_id: params.pub ?? '',
      sub1: values.sub1,
      sub2: values.sub2,
      sub3: values.sub3,
      sub4: values.sub4,
      sub5: values.sub5,
      source: values.src,
      creative: values.cr,
      user_key: params.uid ?? '',
      ip: anonymizeIp(click.ip),
      user_agent: truncateText(click.userAgent, FIELD_MAX_LENGTH.userAgent),
      referer: truncateText(click.referer, FIELD_MAX_LENGTH.referer),
      destination: location,
      is_bot: click.isBot,
      is_duplicate: duplicate.duplicate,
      window_seconds: campaign.window_seconds,
      max_window_seconds: longestWindow(campaign),
    }
    return { event, location, remember: duplicate.remember }
  }

  async function trackingLink(request: FastifyRequest, reply: FastifyReply, campaignId: string, params: TrackingQuery) {
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
      const { clickId, location } = await recordClick({
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
            const { clickId, location } = key === undefined ? await recordClick(click) : await recordIdempotentClick(click, auth.partner.id, key)
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

/**
 * isbot's pattern costs about 10 µs per user agent, and a tracking link sees the same few
 * thousand browsers over and over: remember the answers (bounded; forgotten all at once when full).
 */
function cachedBotCheck(): (userAgent: string) => boolean {
  const answers = new Map<string, boolean>()
  return (userAgent) => {
    let bot = answers.get(userAgent)
    if (bot === undefined) {
      bot = isbot(userAgent)
      if (answers.size >= 10_000) answers.clear()
      answers.set(userAgent, bot)
    }
    return bot
  }
}


/** The request's own parameters other than the reserved ones, in order, repeats kept. */
function passthroughParams(url: string): Array<readonly [string, string]> {
  const queryAt = url.indexOf('?')
  if (queryAt === -1) return []
  const params: Array<readonly [string, string]> = []
  for (const [name, value] of new URLSearchParams(url.slice(queryAt + 1))) {
    if (!RESERVED_PARAMS.has(name) && name !== '') params.push([name, value])
  }
  return params
}
