import { describe, expect, it } from 'vitest'
import type { Partner } from '@clickjoin/campaigns'
import { authenticatePartner, parseSignatureHeader, signPayload } from './partner-auth.ts'

const partner: Partner = { id: 'net1', secret: 'a-partner-secret-of-16+', ip_allowlist: [], updated_at: 0 }
const find = (id: string) => (id === partner.id ? partner : undefined)
const now = 1_800_000_000_000
const t = now / 1000

describe('parseSignatureHeader', () => {
  it('reads t and one or more v1', () => {
    const hex = 'ab'.repeat(32)
    expect(parseSignatureHeader(`t=${t},v1=${hex}`)).toEqual({ timestamp: t, v1: [hex] })
    expect(parseSignatureHeader(`t=${t}, v1=${hex.toUpperCase()}, v0=zz, v1=${'cd'.repeat(32)}`)?.v1).toEqual([hex, 'cd'.repeat(32)])
  })
  it('refuses malformed headers', () => {
    for (const bad of ['', 't=1', `v1=${'ab'.repeat(32)}`, `t=x,v1=${'ab'.repeat(32)}`, 't=1,v1=abc', 't=1,t=2,v1=' + 'ab'.repeat(32), 'garbage']) {
      expect(parseSignatureHeader(bad)).toBeUndefined()
    }
  })
})

describe('authenticatePartner', () => {
  const base = { partnerId: 'net1', token: undefined, signatureHeader: undefined, signedPayload: 'click_id=x', clientIp: '127.0.0.1' }
  const sign = (secret: string, ts: number, payload = 'click_id=x') => `t=${ts},v1=${signPayload(secret, ts, payload)}`

  it('accepts the right token or a fresh signature', () => {
    expect(authenticatePartner({ ...base, token: partner.secret }, find, now).ok).toBe(true)
    expect(authenticatePartner({ ...base, signatureHeader: sign(partner.secret, t) }, find, now).ok).toBe(true)
    expect(authenticatePartner({ ...base, signatureHeader: sign(partner.secret, t - 300) }, find, now).ok).toBe(true)
  })
  it('refuses with 401 what is wrong, stale, or missing', () => {
    const cases = [
      { ...base, token: 'wrong' },
      { ...base, signatureHeader: sign('another-secret-xxxxxxxx', t) },
      { ...base, signatureHeader: sign(partner.secret, t), signedPayload: 'click_id=y' },
      { ...base, signatureHeader: sign(partner.secret, t - 301) },
      { ...base, signatureHeader: sign(partner.secret, t + 301) },
      { ...base },
      { ...base, partnerId: undefined, token: partner.secret },
      { ...base, partnerId: 'nobody', token: partner.secret },
    ]
    for (const c of cases) expect(authenticatePartner(c, find, now)).toMatchObject({ ok: false, status: 401 })
  })
  it('refuses an address outside the allow-list with 403', () => {
    const listed = { ...partner, ip_allowlist: ['10.0.0.0/8'] }
    const r = authenticatePartner({ ...base, token: partner.secret, clientIp: '192.0.2.1' }, () => listed, now)
    expect(r).toMatchObject({ ok: false, status: 403, error: 'ip_not_allowed' })
    expect(authenticatePartner({ ...base, token: partner.secret, clientIp: '10.2.3.4' }, () => listed, now).ok).toBe(true)
  })
})
