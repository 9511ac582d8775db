import type { FastifyRequest } from 'fastify'
import type { PartnerCredentials } from '../domain/partner-auth.ts'

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

function field(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined
  const value = (source as Record<string, unknown>)[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * A partner request's credentials: partner and token from the body, the query or the headers;
 * the signed payload is the raw body (POST) or the raw query string (GET), as SPEC §3 says.
 */
export function partnerCredentials(request: FastifyRequest): PartnerCredentials {
  const queryAt = request.url.indexOf('?')
  const rawQuery = queryAt === -1 ? '' : request.url.slice(queryAt + 1)
  return {
    partnerId: field(request.body, 'partner') ?? field(request.query, 'partner') ?? header(request, 'x-clickjoin-partner'),
    token: field(request.body, 'token') ?? field(request.query, 'token') ?? header(request, 'x-clickjoin-token'),
    signatureHeader: header(request, 'x-clickjoin-signature'),
    signedPayload: request.method === 'GET' || request.method === 'HEAD' ? rawQuery : (request.rawBody ?? ''),
    clientIp: request.ip,
  }
}
