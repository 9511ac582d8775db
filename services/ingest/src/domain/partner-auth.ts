import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { Partner } from '@clickjoin/campaigns'
import { ipAllowList } from './client-ip.ts'

/** How far a signature's timestamp may be from our clock, either way (SPEC §3). */
export const SIGNATURE_TOLERANCE_SECONDS = 300

export interface PartnerCredentials {
  partnerId: string | undefined
  token: string | undefined
  signatureHeader: string | undefined
  /** What the signature covers: the raw body (POST) or the raw query string (GET). */
  signedPayload: string
  clientIp: string
}

export type PartnerAuthResult =
  | { ok: true; partner: Partner }
  | { ok: false; status: 401 | 403; error: string; message: string }

export interface ParsedSignature {
  timestamp: number
  v1: string[]
}

/** Parses `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`; undefined when malformed. */
export function parseSignatureHeader(header: string): ParsedSignature | undefined {
  let timestamp: number | undefined
  const v1: string[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq < 0) return undefined
    const key = part.slice(0, eq).trim()
    const value = part.slice(eq + 1).trim()
    if (key === 't') {
      if (!/^\d{1,12}$/.test(value) || timestamp !== undefined) return undefined
      timestamp = Number(value)
    } else if (key === 'v1') {
      if (!/^[0-9a-fA-F]{64}$/.test(value)) return undefined
      v1.push(value.toLowerCase())
    }
    // other schemes (v0, v2…) are ignored, so partners can send several during a migration
  }
  if (timestamp === undefined || v1.length === 0) return undefined
  return { timestamp, v1 }
}

/** The hex HMAC-SHA256 a partner sends for `payload` at unix time `timestamp`. */
export function signPayload(secret: string, timestamp: number, payload: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex')
}

/** Constant-time equality of two strings of any length (both are hashed to 32 bytes first). */
export function secretsEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest()
  const db = createHash('sha256').update(b).digest()
  return timingSafeEqual(da, db)
}

const allowLists = new WeakMap<Partner, (ip: string) => boolean>()

function ipAllowed(partner: Partner, ip: string): boolean {
  let check = allowLists.get(partner)
  if (!check) allowLists.set(partner, (check = ipAllowList(partner.ip_allowlist)))
  return check(ip)
}

/**
 * Authenticates a partner request (SPEC §3): a token, or an HMAC signature over
 * "<t>.<payload>" no more than 300 s from now; then the partner's IP allow-list. An unknown
 * partner gets the same answer as a wrong secret, so IDs cannot be probed.
 */
export function authenticatePartner(
  credentials: PartnerCredentials,
  findPartner: (id: string) => Partner | undefined,
  nowMs: number = Date.now(),
): PartnerAuthResult {
  const refuse = (error: string, message: string): PartnerAuthResult => ({ ok: false, status: 401, error, message })
  const { partnerId, token, signatureHeader } = credentials
  if (!partnerId) return refuse('missing_credentials', 'partner is required (parameter partner or header X-Clickjoin-Partner)')
  if (token === undefined && signatureHeader === undefined) {
    return refuse('missing_credentials', 'send token (parameter or X-Clickjoin-Token) or X-Clickjoin-Signature')
  }
  const partner = findPartner(partnerId)
  // Compare against a dummy secret for unknown partners: same work, same answer.
  const secret = partner?.secret ?? '\u0000unknown-partner'

  if (signatureHeader !== undefined) {
    const signature = parseSignatureHeader(signatureHeader)
    if (!signature) return refuse('invalid_signature', 'X-Clickjoin-Signature must be t=<unix seconds>,v1=<64 hex>')
    const skew = Math.abs(nowMs / 1000 - signature.timestamp)
    if (skew > SIGNATURE_TOLERANCE_SECONDS) {
      return refuse('signature_expired', `signature timestamp is more than ${SIGNATURE_TOLERANCE_SECONDS} s from now`)
    }
    const expected = Buffer.from(signPayload(secret, signature.timestamp, credentials.signedPayload), 'hex')
    let matched = false
    for (const candidate of signature.v1) matched = timingSafeEqual(expected, Buffer.from(candidate, 'hex')) || matched
    if (!matched || !partner) return refuse('invalid_signature', 'signature does not match')
  } else if (!secretsEqual(token ?? '', secret) || !partner) {
    return refuse('invalid_token', 'token does not match')
  }
  if (!ipAllowed(partner, credentials.clientIp)) {
    return { ok: false, status: 403, error: 'ip_not_allowed', message: 'this IP address is not allowed for the partner' }
  }
  return { ok: true, partner }
}
