import type { FastifyInstance, FastifyReply } from 'fastify'
import type { IngestDeps } from '../app.ts'
import { InvalidParameterError } from '../domain/conversion-params.ts'
import { readCookie } from '../domain/cookie.ts'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { PixelQuery, pixelHeadSchema, pixelSchema } from '../schemas/postbacks.ts'
import { CLICK_COOKIE } from './click-recorder.ts'
import { postbackEvent, postbackFields } from './postbacks.ts'

/** The smallest transparent 1×1 GIF. */
const pixelQueryChecker = TypeCompiler.Compile(PixelQuery)

export const TRANSPARENT_GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64')

/**
 * GET /pixel.gif: a browser conversion with no secret, so it is bound to the campaign it names
 * (`campaign`, required) and has no partner: `partner` is ignored, and its identity is
 * `(campaign, txn_id)` (SPEC §3), so a visitor cannot touch a partner's S2S conversion. Whether
 * the click is of that campaign, and whether the click's campaign has pixel_enabled, only the
 * attributor knows: it records `campaign_mismatch` / `pixel_disabled` rejections. Always a GIF
 * (a broken image helps nobody); X-Clickjoin-Result says whether it was recorded. Only when
 * Kafka does not acknowledge is the status 503 (the GIF still comes).
 */
export async function pixelRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  const { configStore, events, metrics, settings } = deps

  function gif(reply: FastifyReply, status: number, result: string) {
    if (result !== 'accepted') reply.rejectReason = `pixel_${result}`
    return reply
      .code(status)
      .header('content-type', 'image/gif')
      .header('cache-control', 'no-store, max-age=0')
      .header('x-clickjoin-result', result)
      .send(TRANSPARENT_GIF)
  }

  app.get<{ Querystring: PixelQuery }>(
    '/pixel.gif',
    // Bad parameters must still get the GIF: validation errors come to the handler.
    // HEAD has its own route below: a prefetcher's HEAD must not record a conversion.
    { schema: pixelSchema, attachValidation: true, exposeHeadRoute: false },
    async (request, reply) => {
      if (request.validationError || !pixelQueryChecker.Check(request.query)) return gif(reply, 200, 'invalid_parameter')
      const query = request.query
      const campaign = query.campaign ? configStore.campaign(query.campaign) : undefined
      if (!campaign) return gif(reply, 200, query.campaign ? 'unknown_campaign' : 'missing_campaign')
      if (campaign.status === 'paused') return gif(reply, 200, 'campaign_paused')
      let postback
      try {
        postback = postbackEvent(postbackFields(query, undefined), {
          channel: 'pixel',
          partnerId: '',
          campaignId: campaign.id,
          clickId: query.click_id || readCookie(request.headers.cookie, CLICK_COOKIE),
          nowMs: Date.now(),
        })
      } catch (err) {
        if (err instanceof InvalidParameterError) return gif(reply, 200, err.code)
        throw err
      }
      try {
        await events.postback(postback)
      } catch (err) {
        request.log.warn({ err }, 'pixel not stored: Kafka did not acknowledge')
        reply.header('retry-after', String(settings.retryAfterSeconds))
        return gif(reply, 503, 'unavailable')
      }
      metrics.eventsPublished.inc({ kind: 'pixel' })
      return gif(reply, 200, 'accepted')
    },
  )

  // Link checkers and prefetchers: the image is there, nothing is recorded.
  app.head('/pixel.gif', { schema: pixelHeadSchema, attachValidation: true }, async (_request, reply) => gif(reply, 200, 'not_recorded'))
}
