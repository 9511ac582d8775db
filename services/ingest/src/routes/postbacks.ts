import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { randomUUID } from 'node:crypto'
import { FIELD_MAX_LENGTH, type PostbackV1 } from '@clickjoin/contracts'
import type { IngestDeps } from '../app.ts'
import {
  InvalidParameterError,
  MAX_FUTURE_SKEW_MS,
  normalizeCurrency,
  normalizeEvent,
  normalizeRevenue,
  normalizeStatus,
  parseTimestamp,
} from '../domain/conversion-params.ts'
import { authenticatePartner, parseSignatureHeader } from '../domain/partner-auth.ts'
import { sendError, sendUnavailable } from '../plugins/errors.ts'
import { postbackGetSchema, postbackPostSchema, type PostbackFields } from '../schemas/postbacks.ts'
import { partnerCredentials } from './partner-credentials.ts'

const FIELD_NAMES = ['click_id', 'partner', 'token', 'event', 'txn_id', 'revenue', 'currency', 'status', 'ts'] as const

/** The listed parameters only (others are ignored, SPEC §3), body over query. */
export function postbackFields(query: unknown, body: unknown): PostbackFields {
  const fields: Record<string, string> = {}
  for (const source of [query, body]) {
    if (typeof source !== 'object' || source === null || Array.isArray(source)) continue
    for (const name of FIELD_NAMES) {
      const value = (source as Record<string, unknown>)[name]
      if (typeof value === 'string') fields[name] = value
    }
  }
  return fields as PostbackFields
}

/**
 * A postback's event with every default the edge can apply; throws InvalidParameterError (400)
 * for a value outside what SPEC §3 allows.
 */
export function postbackEvent(
  fields: PostbackFields,
  context: { channel: PostbackV1['channel']; partnerId: string; campaignId?: string; clickId: string | undefined; nowMs: number },
): PostbackV1 {
  const clickId = context.clickId ?? ''
  if (clickId === '') throw new InvalidParameterError('click_id', 'is required', 'missing_parameter')
  if (clickId.length > FIELD_MAX_LENGTH.receivedClickId) {
    throw new InvalidParameterError('click_id', `must be at most ${FIELD_MAX_LENGTH.receivedClickId} characters`)
  }
  const txnId = fields.txn_id ?? ''
  if (txnId.length > FIELD_MAX_LENGTH.txnId) throw new InvalidParameterError('txn_id', `must be at most ${FIELD_MAX_LENGTH.txnId} characters`)
  return {
    v: 1,
    postback_id: randomUUID(),
    received_at: context.nowMs,
    channel: context.channel,
    partner_id: context.partnerId,
    click_id: clickId,
    event: normalizeEvent(fields.event),
    txn_id: txnId,
    revenue: normalizeRevenue(fields.revenue),
    currency: normalizeCurrency(fields.currency),
    status: normalizeStatus(fields.status),
    conversion_ts: parseTimestamp('ts', fields.ts, context.nowMs, { maxFutureMs: MAX_FUTURE_SKEW_MS }) ?? context.nowMs,
    ...(context.campaignId === undefined ? {} : { campaign_id: context.campaignId }),
  }
}

export async function postbackRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  const { configStore, events, metrics, signatureReplays, settings } = deps

  async function acceptPostback(request: FastifyRequest, reply: FastifyReply) {
    // Credentials first: an unauthenticated caller learns nothing about what else is wrong.
    const credentials = partnerCredentials(request)
    const auth = authenticatePartner(credentials, (id) => configStore.partner(id))
    if (!auth.ok) return sendError(reply, auth.status, auth.error, auth.message)
    const fields = postbackFields(request.query, request.body)
    const postback = postbackEvent(fields, {
      channel: 'postback',
      partnerId: auth.partner.id,
      clickId: fields.click_id,
      nowMs: Date.now(),
    })
    // A signed request is accepted once (SPEC §3): its replay within the window is a duplicate.
    const signature = credentials.signatureHeader === undefined ? undefined : parseSignatureHeader(credentials.signatureHeader)
    let claim
    try {
      claim = signature && (await signatureReplays.claim(auth.partner.id, signature.timestamp, credentials.signedPayload))
    } catch (err) {
      request.log.warn({ err }, 'signed postback not checked for replay: Redis did not answer')
      return sendUnavailable(reply, settings.retryAfterSeconds, 'the postback could not be checked; retry later')
    }
    if (claim?.kind === 'duplicate') {
      reply.rejectReason = 'duplicate_signature'
      return reply.code(200).send({ status: 'duplicate' })
    }
    if (claim?.kind === 'in_flight') {
      return sendUnavailable(reply, settings.retryAfterSeconds, 'the same signed request is being recorded; retry later')
    }
    // A claim that cannot be settled only delays a retry (it expires): never worth failing the answer.
    const settle = (stored: boolean) => claim?.settle(stored).catch((err: unknown) => request.log.warn({ err }, 'signature claim not settled'))
    try {
      await events.postback(postback)
    } catch (err) {
      await settle(false)
      throw err
    }
    await settle(true)
    metrics.eventsPublished.inc({ kind: 'postback' })
    return reply.code(200).send({ status: 'accepted', postback_id: postback.postback_id })
  }

  // No automatic HEAD route: a HEAD (link checkers, prefetchers) must not record a conversion.
  app.get('/postback', { schema: postbackGetSchema, exposeHeadRoute: false }, acceptPostback)
  app.post('/postback', { schema: postbackPostSchema }, acceptPostback)
}
