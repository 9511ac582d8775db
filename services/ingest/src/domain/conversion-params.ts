import type { PostbackV1 } from '@clickjoin/contracts'

/** A parameter that is present but wrong: becomes `400 {error, message}`. */
export class InvalidParameterError extends Error {
  override readonly name = 'InvalidParameterError'
  constructor(
    readonly field: string,
    message: string,
    readonly code = 'invalid_parameter',
  ) {
    super(`${field}: ${message}`)
  }
}

/** Conversions may be stamped at most this far ahead of our clock (SPEC §3). */
export const MAX_FUTURE_SKEW_MS = 300_000

/**
 * Revenue as the contract's decimal string: "012.50" → "12.5", "3.000" → "3", ".5" → "0.5".
 * At most 12 integer and 6 fraction digits (ClickHouse Decimal(18,6)); never a float on the way.
 */
export function normalizeRevenue(text: string | undefined): string {
  if (text === undefined || text === '') return '0'
  const match = /^(\d*)(?:\.(\d{0,6}))?$/.exec(text.trim())
  if (!match || (match[1] === '' && !match[2])) {
    throw new InvalidParameterError('revenue', 'must be a decimal ≥ 0 with at most 6 fraction digits')
  }
  const integer = match[1]!.replace(/^0+(?=\d)/, '') || '0'
  const fraction = (match[2] ?? '').replace(/0+$/, '')
  if (integer.length > 12) throw new InvalidParameterError('revenue', 'must be below 10^12')
  return fraction === '' ? integer : `${integer}.${fraction}`
}

const KNOWN_CURRENCIES = new Set(Intl.supportedValuesOf('currency'))

/** An ISO 4217 code in any case → upper case; '' when not sent (the campaign's applies). */
export function normalizeCurrency(text: string | undefined): string {
  if (text === undefined || text === '') return ''
  const code = text.trim().toUpperCase()
  if (!/^[A-Z]{3}$/.test(code) || !KNOWN_CURRENCIES.has(code)) {
    throw new InvalidParameterError('currency', 'must be an ISO 4217 currency code such as USD')
  }
  return code
}

const STATUSES = new Set(['approved', 'pending', 'rejected'])

export function normalizeStatus(text: string | undefined): PostbackV1['status'] {
  if (text === undefined || text === '') return 'approved'
  if (!STATUSES.has(text)) throw new InvalidParameterError('status', 'must be approved, pending or rejected')
  return text as PostbackV1['status']
}

export function normalizeEvent(text: string | undefined): string {
  if (text === undefined || text === '') return 'conversion'
  if (!/^[a-z0-9_]{1,32}$/.test(text)) throw new InvalidParameterError('event', 'must be 1–32 characters a–z 0–9 _')
  return text
}

const ISO_8601 =
  /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

/**
 * A timestamp as unix seconds (fractions allowed) or ISO 8601 (UTC when no offset is given),
 * in ms. Bounds: not before 2000 and not more than `maxFutureMs` ahead of `nowMs`.
 */
export function parseTimestamp(
  field: string,
  text: string | number | undefined,
  nowMs: number,
  bounds: { maxFutureMs: number; maxPastMs?: number },
): number | undefined {
  if (text === undefined || text === '') return undefined
  const raw = String(text).trim()
  let ms: number
  if (/^\d{1,12}(?:\.\d{1,6})?$/.test(raw)) {
    ms = Math.round(Number(raw) * 1000)
  } else if (ISO_8601.test(raw)) {
    const hasZone = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(raw) && raw.length > 10
    ms = Date.parse(hasZone ? raw : raw.length === 10 ? `${raw}T00:00:00Z` : `${raw.replace(' ', 'T')}Z`)
  } else {
    throw new InvalidParameterError(field, 'must be unix seconds or an ISO 8601 date-time')
  }
  if (!Number.isFinite(ms) || ms < 946_684_800_000) {
    throw new InvalidParameterError(field, 'must be a valid time after 2000-01-01')
  }
  if (ms > nowMs + bounds.maxFutureMs) {
    throw new InvalidParameterError(field, `must not be more than ${bounds.maxFutureMs / 1000} s in the future`)
  }
  if (bounds.maxPastMs !== undefined && ms < nowMs - bounds.maxPastMs) {
    throw new InvalidParameterError(field, `must not be more than ${bounds.maxPastMs / 1000} s in the past`)
  }
  return ms
}
