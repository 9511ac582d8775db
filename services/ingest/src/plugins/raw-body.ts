import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyRequest {
    /** The body exactly as received: partners sign it (X-Clickjoin-Signature). */
    rawBody: string | undefined
  }
}

/**
 * JSON and form bodies parsed from the text we keep, because an HMAC signature covers the raw
 * bytes, and re-serializing a parsed body would not reproduce them. (@fastify/formbody's
 * parser cannot hand the raw text over, hence this parser instead.)
 */
export const rawBodyParsers = fp(
  async (app) => {
    app.decorateRequest('rawBody', undefined)
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      const text = body as string
      request.rawBody = text
      try {
        done(null, JSON.parse(text))
      } catch {
        done(Object.assign(new Error('body is not valid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined)
      }
    })
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
      const text = body as string
      request.rawBody = text
      done(null, formFields(text))
    })
  },
  { name: 'ingest-raw-body-parsers' },
)

/** Form fields; a repeated name becomes an array (and then fails its string schema). */
export function formFields(text: string): Record<string, string | string[]> {
  const fields = new Map<string, string | string[]>()
  for (const [name, value] of new URLSearchParams(text)) {
    const seen = fields.get(name)
    fields.set(name, seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value])
  }
  return Object.fromEntries(fields)
}
