import fp from 'fastify-plugin'
import type { FastifyError, FastifyReply, FastifySchemaValidationError } from 'fastify'
import { KafkaUnavailableError } from '@clickjoin/kafka'
import { IdempotencyUnavailableError } from '../domain/click-idempotency.ts'
import { InvalidParameterError } from '../domain/conversion-params.ts'
import { allowedMethodsOf } from './method-not-allowed.ts'

/** Every refusal is `{error: <code>, message}` JSON; the code also feeds the rejects metric. */
export function sendError(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  reply.rejectReason = error
  return reply.code(status).type('application/json; charset=utf-8').send({ error, message })
}

export function sendUnavailable(reply: FastifyReply, retryAfterSeconds: number, message: string): FastifyReply {
  reply.header('retry-after', String(retryAfterSeconds))
  return sendError(reply, 503, 'unavailable', message)
}

/** `sub1: must NOT have more than 512 characters` — the field first, in the request's terms. */
export function describeValidationError(errors: readonly FastifySchemaValidationError[], context: string | undefined): string {
  const first = errors[0]
  if (!first) return 'invalid request'
  const params = first.params as Record<string, unknown>
  const path = first.instancePath.split('/').filter(Boolean).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
  if (typeof params['missingProperty'] === 'string') {
    return `${[...path, params['missingProperty']].join('.')}: is required`
  }
  // A key of a map that propertyNames refuses (e.g. an event name): ajv names it on the error.
  const propertyName = (first as { propertyName?: unknown }).propertyName ?? params['propertyName']
  if (typeof propertyName === 'string') {
    return `${[...path, propertyName].join('.')}: is not an allowed name${first.message ? ` (${first.message})` : ''}`
  }
  if (typeof params['additionalProperty'] === 'string') {
    return `${[...path, params['additionalProperty']].join('.')}: is not an allowed field`
  }
  const field = path.length > 0 ? path.join('.') : context === 'body' ? 'body' : (context ?? 'request')
  const schema = (first as { parentSchema?: { description?: unknown } }).parentSchema
  // A pattern says little to a person: its description says what is wanted.
  if (first.keyword === 'pattern' && typeof schema?.description === 'string') return `${field}: must be ${schema.description}`
  const hint = typeof schema?.description === 'string' ? ` (${schema.description})` : ''
  return `${field}: ${first.message ?? 'is invalid'}${hint}`
}

const CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_body',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_body',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
}

/**
 * One error handler for the whole app: schema failures → 400 naming the field; Kafka not
 * acknowledging → 503 with Retry-After (never a 2xx for an event not stored); other client
 * errors keep their status; anything else is our bug → 500, logged.
 */
export const errorResponses = fp<{ retryAfterSeconds: number }>(
  async (app, { retryAfterSeconds }) => {
    app.setErrorHandler((error: FastifyError, request, reply) => {
      // A method the path does not take, refused by fastify before the 405 handler ran (e.g. a
      // QUERY without Content-Type): still a 405.
      const allow = allowedMethodsOf(request.routeOptions.config)
      if (allow !== undefined) {
        reply.header('allow', allow)
        return sendError(reply, 405, 'method_not_allowed', `${request.method} is not allowed here; allowed: ${allow}`)
      }
      if (error.validation) {
        return sendError(reply, 400, 'invalid_parameter', describeValidationError(error.validation, error.validationContext))
      }
      if (error instanceof InvalidParameterError) return sendError(reply, 400, error.code, error.message)
      if (error instanceof IdempotencyUnavailableError) {
        request.log.warn({ err: error }, 'idempotency keys not checked: answering 503')
        return sendUnavailable(reply, retryAfterSeconds, 'the clicks could not be checked; retry later')
      }
      if (error instanceof KafkaUnavailableError) {
        request.log.warn({ err: error }, 'Kafka did not acknowledge: answering 503')
        return sendUnavailable(reply, retryAfterSeconds, 'the event could not be stored; retry later')
      }
      const status = error.statusCode ?? 500
      if (status >= 400 && status < 500) {
        return sendError(reply, status, CODES[error.code] ?? 'bad_request', error.message)
      }
      request.log.error({ err: error }, 'request failed')
      if (status === 503) return sendUnavailable(reply, retryAfterSeconds, 'service unavailable; retry later')
      return sendError(reply, 500, 'internal', 'internal error')
    })
    app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`))
  },
  { name: 'ingest-error-responses' },
)
