import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InjectOptions } from 'fastify'
import { readTopic } from '@clickjoin/local-stack/testing'
import type { PostbackV1 } from '@clickjoin/contracts'
import { signPayload } from '../src/domain/partner-auth.ts'
import { TRANSPARENT_GIF } from '../src/routes/pixel.ts'
import { putCampaign, putPartner, startTestIngest } from './harness.ts'

type Service = Awaited<ReturnType<typeof startTestIngest>>
let svc: Service
const SECRET = 'partner-secret-0123456789'
const nowSeconds = () => Math.floor(Date.now() / 1000)
const signature = (payload: string, t = nowSeconds(), secret = SECRET) => `t=${t},v1=${signPayload(secret, t, payload)}`

async function conversionsInKafka(): Promise<PostbackV1[]> {
  return (await readTopic(svc.brokers, svc.topics.conversions)).map((m) => JSON.parse(m.value) as PostbackV1)
}

beforeAll(async () => {
  svc = await startTestIngest()
  await putPartner(svc, 'net', { secret: SECRET })
  await putPartner(svc, 'listed', { secret: SECRET, ip_allowlist: ['10.0.0.0/8', '2001:db8::/32'] })
  await putCampaign(svc, 'pix', { destination: 'https://shop.example/', status: 'active', pixel_enabled: true })
  await putCampaign(svc, 'nopix', { destination: 'https://shop.example/', status: 'active' })
})
afterAll(async () => {
  await svc?.stop()
})

describe('postback authentication: refused requests record nothing', () => {
  const refused: Array<{ name: string; status: number; error: string; request: () => InjectOptions }> = [
    { name: 'missing credentials', status: 401, error: 'missing_credentials', request: () => ({ url: '/postback?partner=net&click_id=refused-1' }) },
    { name: 'missing partner', status: 401, error: 'missing_credentials', request: () => ({ url: `/postback?click_id=refused-2&token=${SECRET}` }) },
    { name: 'wrong token', status: 401, error: 'invalid_token', request: () => ({ url: '/postback?partner=net&click_id=refused-3&token=wrong-secret-0123456789' }) },
    {
      name: 'wrong token header',
      status: 401,
      error: 'invalid_token',
      request: () => ({ url: '/postback?partner=net&click_id=refused-4', headers: { 'x-clickjoin-token': 'nope' } }),
    },
    {
      name: 'unknown partner with a right secret',
      status: 401,
      error: 'invalid_token',
      request: () => ({ url: `/postback?partner=ghost&click_id=refused-5&token=${SECRET}` }),
    },
    {
      name: 'signature with the wrong secret',
      status: 401,
      error: 'invalid_signature',
      request: () => {
        const q = 'partner=net&click_id=refused-6'
        return { url: `/postback?${q}`, headers: { 'x-clickjoin-signature': signature(q, nowSeconds(), 'other-secret-0123456789') } }
      },
    },
    {
      name: 'tampered query after signing',
      status: 401,
      error: 'invalid_signature',
      request: () => ({
        url: '/postback?partner=net&click_id=refused-7&revenue=1000',
        headers: { 'x-clickjoin-signature': signature('partner=net&click_id=refused-7&revenue=1') },
      }),
    },
    {
      name: 'tampered POST body',
      status: 401,
      error: 'invalid_signature',
      request: () => ({
        method: 'POST',
        url: '/postback',
        headers: {
          'content-type': 'application/json',
          'x-clickjoin-partner': 'net',
          'x-clickjoin-signature': signature('{"click_id":"refused-8","revenue":"1"}'),
        },
        payload: '{"click_id":"refused-8","revenue":"9"}',
      }),
    },
    {
      name: 'signature 301 s old',
      status: 401,
      error: 'signature_expired',
      request: () => {
        const q = 'partner=net&click_id=refused-9'
        return { url: `/postback?${q}`, headers: { 'x-clickjoin-signature': signature(q, nowSeconds() - 301) } }
      },
    },
    {
      name: 'signature 301 s ahead',
      status: 401,
      error: 'signature_expired',
      request: () => {
        const q = 'partner=net&click_id=refused-10'
        return { url: `/postback?${q}`, headers: { 'x-clickjoin-signature': signature(q, nowSeconds() + 301) } }
      },
    },
    {
      name: 'malformed signature header',
      status: 401,
      error: 'invalid_signature',
      request: () => ({ url: '/postback?partner=net&click_id=refused-11', headers: { 'x-clickjoin-signature': 'sha256=abc' } }),
    },
    {
      name: 'IP outside the allow-list (right token)',
      status: 403,
      error: 'ip_not_allowed',
      request: () => ({ url: `/postback?partner=listed&click_id=refused-12&token=${SECRET}`, remoteAddress: '192.0.2.10' }),
    },
    {
      name: 'IP outside the allow-list (valid signature)',
      status: 403,
      error: 'ip_not_allowed',
      request: () => {
        const q = 'partner=listed&click_id=refused-13'
        return { url: `/postback?${q}`, headers: { 'x-clickjoin-signature': signature(q) }, remoteAddress: '2001:db9::1' }
      },
    },
  ]

  it.each(refused)('$name → $status $error', async ({ status, error, request }) => {
    const res = await svc.app.inject(request())
    expect(res.statusCode).toBe(status)
    expect(res.json()).toMatchObject({ error })
  })

  it('accepts valid tokens, signatures (GET query, POST JSON and form) and allowed IPs', async () => {
    const accepted: string[] = []
    const expectAccepted = async (request: InjectOptions) => {
      const res = await svc.app.inject(request)
      expect(res.statusCode, res.body).toBe(200)
      const body = res.json<{ status: string; postback_id: string }>()
      expect(body.status).toBe('accepted')
      accepted.push(body.postback_id)
    }
    await expectAccepted({ url: `/postback?partner=net&click_id=ok-token&token=${SECRET}` })
    await expectAccepted({ url: '/postback?partner=net&click_id=ok-header', headers: { 'x-clickjoin-token': SECRET } })
    const q = 'click_id=ok-sig-get&partner=net&revenue=1.5'
    await expectAccepted({ url: `/postback?${q}`, headers: { 'x-clickjoin-signature': signature(q, nowSeconds() - 299) } })
    const json = '{"click_id":"ok-sig-json","revenue":"2","currency":"eur"}'
    await expectAccepted({
      method: 'POST',
      url: '/postback',
      headers: { 'content-type': 'application/json', 'x-clickjoin-partner': 'net', 'x-clickjoin-signature': signature(json, nowSeconds() + 299) },
      payload: json,
    })
    const form = 'click_id=ok-sig-form&partner=net&status=pending&ts=2026-01-01T00:00:00Z'
    await expectAccepted({
      method: 'POST',
      url: '/postback',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-clickjoin-signature': signature(form) },
      payload: form,
    })
    await expectAccepted({ url: `/postback?partner=listed&click_id=ok-listed&token=${SECRET}`, remoteAddress: '10.9.8.7' })

    const stored = await conversionsInKafka()
    expect(stored.filter((p) => p.click_id.startsWith('refused-'))).toEqual([])
    expect(stored.map((p) => p.postback_id).sort()).toEqual([...accepted].sort())
    const byClick = new Map(stored.map((p) => [p.click_id, p]))
    expect(byClick.get('ok-sig-get')).toMatchObject({ partner_id: 'net', revenue: '1.5', currency: '', status: 'approved', event: 'conversion', channel: 'postback' })
    expect(byClick.get('ok-sig-json')).toMatchObject({ revenue: '2', currency: 'EUR' })
    expect(byClick.get('ok-sig-form')).toMatchObject({ status: 'pending', conversion_ts: Date.UTC(2026, 0, 1) })
  })
})

describe('postback validation: 400 naming the field, nothing recorded', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['missing click_id', `partner=net&token=${SECRET}`, /^click_id: is required/],
    ['click_id too long', `partner=net&token=${SECRET}&click_id=${'x'.repeat(129)}`, /^click_id:/],
    ['bad event', `partner=net&token=${SECRET}&click_id=bad-1&event=Sale!`, /^event:/],
    ['negative revenue', `partner=net&token=${SECRET}&click_id=bad-2&revenue=-1`, /^revenue:/],
    ['7 fraction digits', `partner=net&token=${SECRET}&click_id=bad-3&revenue=1.1234567`, /^revenue:/],
    ['revenue not a number', `partner=net&token=${SECRET}&click_id=bad-4&revenue=ten`, /^revenue:/],
    ['unknown currency', `partner=net&token=${SECRET}&click_id=bad-5&currency=XXY`, /^currency:/],
    ['status outside its set', `partner=net&token=${SECRET}&click_id=bad-6&status=paid`, /^status:/],
    ['ts 301 s ahead', `partner=net&token=${SECRET}&click_id=bad-7&ts=${nowSeconds() + 400}`, /^ts:.*future/],
    ['ts not a time', `partner=net&token=${SECRET}&click_id=bad-8&ts=tomorrow`, /^ts:/],
    ['txn_id too long', `partner=net&token=${SECRET}&click_id=bad-9&txn_id=${'t'.repeat(129)}`, /^txn_id:/],
  ]
  it.each(cases)('%s', async (_name, query, message) => {
    const res = await svc.app.inject({ url: `/postback?${query}` })
    expect(res.statusCode).toBe(400)
    const body = res.json<{ error: string; message: string }>()
    expect(body.error).toMatch(/^(invalid_parameter|missing_parameter)$/)
    expect(body.message).toMatch(message)
  })

  it('bad bodies: invalid JSON, a JSON array, an unsupported type, too large', async () => {
    const post = (contentType: string, payload: string) =>
      svc.app.inject({ method: 'POST', url: `/postback?partner=net&token=${SECRET}`, headers: { 'content-type': contentType }, payload })
    expect((await post('application/json', '{"click_id":')).json()).toMatchObject({ error: 'invalid_body' })
    expect((await post('application/json', '["x"]')).statusCode).toBe(400)
    const xml = await post('application/xml', '<x/>')
    expect(xml.statusCode).toBe(415)
    expect(xml.json()).toMatchObject({ error: 'unsupported_media_type' })
    const big = await post('application/json', JSON.stringify({ click_id: 'big', txn_id: 'x'.repeat(100_000) }))
    expect(big.statusCode).toBe(413)
    expect(big.json()).toMatchObject({ error: 'body_too_large' })
  })

  it('recorded none of them', async () => {
    const stored = await conversionsInKafka()
    expect(stored.filter((p) => /^(bad-|big)/.test(p.click_id))).toEqual([])
  })
})

describe('signed postback replay', () => {
  it('accepts a signed request once: the same signature again answers duplicate and records nothing; a new signature counts', async () => {
    const q = 'click_id=replay-1&partner=net&event=level_up&revenue=1'
    const header = signature(q, nowSeconds() - 10)
    const answers = []
    for (let i = 0; i < 3; i++) {
      const res = await svc.app.inject({ url: `/postback?${q}`, headers: { 'x-clickjoin-signature': header } })
      expect(res.statusCode, res.body).toBe(200)
      answers.push(res.json<{ status: string }>().status)
    }
    expect(answers).toEqual(['accepted', 'duplicate', 'duplicate'])
    // The same body POSTed with the same signature by another route is the same request.
    const json = '{"click_id":"replay-2","partner":"net"}'
    const post = () =>
      svc.app.inject({ method: 'POST', url: '/postback', headers: { 'content-type': 'application/json', 'x-clickjoin-signature': header2 }, payload: json })
    const header2 = signature(json)
    expect((await post()).json()).toMatchObject({ status: 'accepted' })
    expect((await post()).json()).toEqual({ status: 'duplicate' })
    // A fresh signature (another t) is another request: a repeatable event counts again.
    const later = await svc.app.inject({ url: `/postback?${q}`, headers: { 'x-clickjoin-signature': signature(q, nowSeconds() - 5) } })
    expect(later.json()).toMatchObject({ status: 'accepted' })
    const stored = await conversionsInKafka()
    expect(stored.filter((p) => p.click_id === 'replay-1')).toHaveLength(2)
    expect(stored.filter((p) => p.click_id === 'replay-2')).toHaveLength(1)
  })
})

describe('pixel', () => {
  it('always answers a 1×1 GIF and records every well-formed hit of a known campaign, bound to it, using the cookie as fallback', async () => {
    const hits = [
      { url: '/pixel.gif?campaign=pix&click_id=px-1&event=signup', result: 'accepted' },
      { url: '/pixel.gif?campaign=pix', cookies: { cj_cid: 'px-cookie' }, result: 'accepted' },
      { url: '/pixel.gif?campaign=pix&partner=net&revenue=3.50&txn_id=o1', cookies: { cj_cid: 'px-2' }, result: 'accepted' },
      // Whether the click's campaign takes pixels is the attributor's call (pixel_disabled).
      { url: '/pixel.gif?campaign=nopix&click_id=px-3', result: 'accepted' },
      { url: '/pixel.gif?click_id=px-no-2', result: 'missing_campaign' },
      { url: '/pixel.gif?campaign=ghost&click_id=px-no-3', result: 'unknown_campaign' },
      { url: '/pixel.gif?campaign=pix', result: 'missing_parameter' },
      { url: '/pixel.gif?campaign=pix&click_id=px-no-4&revenue=-5', result: 'invalid_parameter' },
      { url: '/pixel.gif?campaign=pix&click_id=px-no-5&event=BAD!', result: 'invalid_parameter' },
    ]
    for (const hit of hits) {
      const res = await svc.app.inject({ url: hit.url, ...(hit.cookies ? { cookies: hit.cookies } : {}) })
      expect(res.statusCode, hit.url).toBe(200)
      expect(res.headers['content-type']).toBe('image/gif')
      expect(res.rawPayload.equals(TRANSPARENT_GIF)).toBe(true)
      expect(res.headers['x-clickjoin-result'], hit.url).toBe(hit.result)
    }
    // A prefetcher's HEAD gets the image's headers and records nothing.
    const head = await svc.app.inject({ method: 'HEAD', url: '/pixel.gif?campaign=pix&click_id=px-head' })
    expect(head.statusCode).toBe(200)
    expect(head.headers['content-type']).toBe('image/gif')
    expect(head.headers['x-clickjoin-result']).toBe('not_recorded')
    const pixels = (await conversionsInKafka()).filter((p) => p.channel === 'pixel')
    expect(pixels.map((p) => p.click_id).sort()).toEqual(['px-1', 'px-2', 'px-3', 'px-cookie'])
    // partner= is ignored: the pixel has no partner, it belongs to its campaign.
    expect(pixels.find((p) => p.click_id === 'px-2')).toMatchObject({ partner_id: '', campaign_id: 'pix', revenue: '3.5', txn_id: 'o1' })
    expect(pixels.find((p) => p.click_id === 'px-1')).toMatchObject({ partner_id: '', campaign_id: 'pix', event: 'signup' })
    expect(pixels.find((p) => p.click_id === 'px-3')).toMatchObject({ campaign_id: 'nopix' })
  })
})
