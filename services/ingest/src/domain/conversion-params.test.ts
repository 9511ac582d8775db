import { describe, expect, it } from 'vitest'
import { normalizeCurrency, normalizeRevenue, parseTimestamp } from './conversion-params.ts'

describe('normalizeRevenue', () => {
  it('gives the contract decimal string', () => {
    expect(normalizeRevenue(undefined)).toBe('0')
    expect(normalizeRevenue('012.50')).toBe('12.5')
    expect(normalizeRevenue('3.000000')).toBe('3')
    expect(normalizeRevenue('.5')).toBe('0.5')
    expect(normalizeRevenue('7.')).toBe('7')
    expect(normalizeRevenue('999999999999.999999')).toBe('999999999999.999999')
  })
  it('refuses negatives, exponents, too many digits', () => {
    for (const bad of ['-1', '1e3', '1.1234567', '1000000000000', 'abc', '.', '1,5', 'NaN']) {
      expect(() => normalizeRevenue(bad)).toThrow(/revenue/)
    }
  })
})

describe('normalizeCurrency', () => {
  it('accepts ISO 4217 codes in any case', () => {
    expect(normalizeCurrency('eur')).toBe('EUR')
    expect(normalizeCurrency(undefined)).toBe('')
    expect(() => normalizeCurrency('XYZ')).toThrow(/currency/)
    expect(() => normalizeCurrency('EURO')).toThrow(/currency/)
  })
})

describe('parseTimestamp', () => {
  const now = Date.UTC(2026, 0, 1)
  const bounds = { maxFutureMs: 300_000 }
  it('reads unix seconds and ISO 8601 (UTC without an offset)', () => {
    expect(parseTimestamp('ts', '1767225600', now, bounds)).toBe(now)
    expect(parseTimestamp('ts', 1767225600.5, now, bounds)).toBe(now + 500)
    expect(parseTimestamp('ts', '2026-01-01T00:00:00Z', now, bounds)).toBe(now)
    expect(parseTimestamp('ts', '2026-01-01T01:00:00+01:00', now, bounds)).toBe(now)
    expect(parseTimestamp('ts', '2025-12-31 23:00:00', now, bounds)).toBe(now - 3_600_000)
    expect(parseTimestamp('ts', '', now, bounds)).toBeUndefined()
  })
  it('refuses the far future, the distant past and nonsense', () => {
    expect(parseTimestamp('ts', String(now / 1000 + 300), now, bounds)).toBe(now + 300_000)
    expect(() => parseTimestamp('ts', String(now / 1000 + 301), now, bounds)).toThrow(/future/)
    expect(() => parseTimestamp('ts', String(now / 1000 - 86_401), now, { ...bounds, maxPastMs: 86_400_000 })).toThrow(/past/)
    expect(() => parseTimestamp('ts', 'yesterday', now, bounds)).toThrow(/ts/)
    expect(() => parseTimestamp('ts', '2026-13-45T00:00:00Z', now, bounds)).toThrow(/ts/)
  })
})
