import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickIdKeyring, parseClickIdKeys, verifyClickId } from '@clickjoin/click-id'
import { readTopic, waitFor } from '@clickjoin/local-stack/testing'
import type { ClickV1 } from '@clickjoin/contracts'
import { signPayload } from '../src/domain/partner-auth.ts'
import { adminHeaders, CLICK_ID_KEYS, putCampaign, putPartner, putTrackingCampaigns, startTestIngest } from './harness.ts'

type Service = Awaited<ReturnType<typeof startTestIngest>>
let svc: Service
const keyring = createClickIdKeyring({ keys: parseClickIdKeys(CLICK_ID_KEYS), currentKeyId: 1 })

async function clicksInKafka(): Promise<ClickV1[]> {
  return (await readTopic(svc.brokers, svc.topics.clicks)).map((m) => JSON.parse(m.value) as ClickV1)
}

beforeAll(async () => {
  svc = await startTestIngest()
  await putTrackingCampaigns(svc)
  await putPartner(svc, 'net', { secret: 'network-secret-0123456789' })
})
afterAll(async () => {
  await svc?.stop()
})

describe('tracking links', () => {
  it('redirects with every macro URL-encoded, sets the cookie, and the click is in Kafka before the answer', async () => {
    const res = await svc.app.inject({
      url: '/c/macros?pub=p%201&sub1=a%26b&sub2=%2F&sub3=%3F&sub4=%23&sub5=%C3%A9&src=fb%3Dx&cr=%2B&uid=u1&other=z',
      headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', referer: 'https://pub.example/page' },
      remoteAddress: '198.51.100.77',
    })
    expect(res.statusCode).toBe(302)
    const location = res.headers.location as string
    const clickId = new URL(location).searchParams.get('cid')!
    expect(verifyClickId(keyring, clickId).valid).toBe(true)
    expect(location).toBe(
      `https://shop.example/land/macros?cid=${clickId}&p=p%201&s=a%26b,%2F,%3F,%23,%C3%A9&src=fb%3Dx&cr=%2B`,
    )
    const cookie = String(res.headers['set-cookie'])
    expect(cookie).toContain(`cj_cid=${clickId}`)
    expect(cookie).toContain('HttpOnly')
    expect(cookie).toContain('SameSite=Lax')
    expect(cookie).toContain('Max-Age=86400')
    expect(cookie).toContain('Path=/')

    const click = (await clicksInKafka()).find((c) => c.click_id === clickId)
    expect(click).toMatchObject({
      campaign_id: 'macros',
      publisher_id: 'p 1',
      sub1: 'a&b',
      sub5: 'é',
      source: 'fb=x',
      creative: '+',
      user_key: 'u1',
      ip: '198.51.100.0',
      referer: 'https://pub.example/page',
      destination: location,
      is_bot: false,
      is_duplicate: false,
      window_seconds: 86_400,
    })
  })

  it('appends click_id_param when the template has no {click_id}, before the fragment; no pass-through by default', async () => {
    const res = await svc.app.inject({ url: '/c?campaign=plain&pub=7&utm_source=news' })
    expect(res.statusCode).toBe(302)
    expect(res.headers.location).toMatch(/^https:\/\/shop\.example\/offer\?x=1&aff_sub=[A-Za-z0-9_-]{32}#frag$/)
  })

  it('passes unknown parameters through when the campaign allows it', async () => {
    const res = await svc.app.inject({ url: '/c/pass?pub=7&utm_source=news&utm_term=a%20b&sub1=s' })
    expect(res.headers.location).toMatch(/^https:\/\/shop\.example\/p\?c=[A-Za-z0-9_-]{32}&utm_source=news&utm_term=a%20b$/)
  })

  it('answers JSON for Accept: application/json or format=json', async () => {
    for (const req of [{ url: '/c/plain', headers: { accept: 'application/json' } }, { url: '/c/plain?format=json' }]) {
      const res = await svc.app.inject(req)
      expect(res.statusCode).toBe(200)
      const body = res.json<{ click_id: string; location: string }>()
      expect(body.location).toBe(`https://shop.example/offer?x=1&aff_sub=${body.click_id}#frag`)
      expect(res.headers['set-cookie']).toContain(`cj_cid=${body.click_id}`)
    }
  })

  it('unknown campaign: 404 JSON; paused: fallback without a click, or 404', async () => {
    const before = (await clicksInKafka()).length
    const unknown = await svc.app.inject({ url: '/c/nope' })
    expect(unknown.statusCode).toBe(404)
    expect(unknown.json()).toMatchObject({ error: 'unknown_campaign' })
    const paused = await svc.app.inject({ url: '/c/paused?pub=1' })
    expect(paused.statusCode).toBe(302)
    expect(paused.headers.location).toBe('https://fallback.example/sorry')
    expect(paused.headers['set-cookie']).toBeUndefined()
    expect((await svc.app.inject({ url: '/c/paused-nofb' })).statusCode).toBe(404)
    expect((await svc.app.inject({ url: '/c' })).json()).toMatchObject({ error: 'invalid_parameter', message: 'campaign: is required' })
    expect(await clicksInKafka()).toHaveLength(before)
  })

  it('flags bots, HEAD requests and duplicates (same campaign, IP, UA within 60 s) without dropping them', async () => {
    const ua = 'Mozilla/5.0 (Windows NT 10.0) Chrome/130.0 dup-test'
    const first = await svc.app.inject({ url: '/c/plain?format=json', headers: { 'user-agent': ua }, remoteAddress: '203.0.113.5' })
    const second = await svc.app.inject({ url: '/c/plain?format=json', headers: { 'user-agent': ua }, remoteAddress: '203.0.113.5' })
    const bot = await svc.app.inject({ url: '/c/plain?format=json', headers: { 'user-agent': 'Googlebot/2.1 (+http://www.google.com/bot.html)' } })
    const head = await svc.app.inject({ method: 'HEAD', url: '/c/plain', headers: { 'user-agent': ua }, remoteAddress: '203.0.113.6' })
    expect(head.statusCode).toBe(302)
    const byId = new Map((await clicksInKafka()).map((c) => [c.click_id, c]))
    expect(byId.get(first.json<{ click_id: string }>().click_id)).toMatchObject({ is_duplicate: false, is_bot: false, ip: '203.0.113.0' })
    expect(byId.get(second.json<{ click_id: string }>().click_id)).toMatchObject({ is_duplicate: true, is_bot: false })
    expect(byId.get(bot.json<{ click_id: string }>().click_id)).toMatchObject({ is_bot: true })
    const headId = /aff_sub=([^#&]+)/.exec(head.headers.location as string)![1]!
    expect(byId.get(headId)).toMatchObject({ is_bot: true })
  })

  it('truncates the user agent and referer to their column lengths', async () => {
    const res = await svc.app.inject({
      url: '/c/plain?format=json',
      headers: { 'user-agent': 'U'.repeat(5000), referer: `https://r.example/${'r'.repeat(5000)}` },
    })
    const click = (await clicksInKafka()).find((c) => c.click_id === res.json<{ click_id: string }>().click_id)!
    expect(click.user_agent).toHaveLength(1024)
    expect(click.referer).toHaveLength(2048)
  })
})

describe('open redirect attempts', () => {
  const attacks = [
    '//evil.example',
    'https:evil.example',
    'https://evil.example',
    '\\\\evil.example',
    '/\\evil.example',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'HTTPS://EVIL.EXAMPLE',
    '@evil.example',
    'x@evil.example:443',
    '%2F%2Fevil.example',
    '%2f%2FEvil.Example',
    '%5C%5Cevil.example',
    '%2F%5Cevil.example',
    '%252F%252Fevil.example',
    'javascript%3Aalert(1)',
    '\r\nLocation: https://evil.example',
    '%0d%0aLocation:%20https://evil.example',
    '\u3002evil\uff0eexample',
  ]
  const params = ['pub', 'sub1', 'sub2', 'sub3', 'sub4', 'sub5', 'src', 'cr', 'uid', 'format', 'next', 'url', 'redirect', 'click_id']

  it('never yields a Location outside the destination host, in any parameter, raw or encoded', async () => {
    await putCampaign(svc, 'redir', {
      destination: 'https://shop.example/{pub}/{sub1}?a={sub2}&b={sub3}&c={sub4}&d={sub5}&e={src}#{cr}',
      status: 'active',
      passthrough: true,
    })
    let redirects = 0
    for (const attack of attacks) {
      for (const param of params) {
        for (const value of [encodeURIComponent(attack), attack.replace(/[\r\n ]/g, encodeURIComponent)]) {
          for (const path of ['/c/redir', '/c/plain']) {
            const res = await svc.app.inject({ url: `${path}?${param}=${value}&${value}=${value}` })
            expect(res.statusCode, `${param}=${value}`).toBeLessThan(500)
            const location = res.headers.location
            if (location === undefined) continue
            redirects++
            expect(typeof location === 'string' && new URL(location).origin, `${param}=${value} → ${String(location)}`).toBe(
              'https://shop.example',
            )
            expect(location).toMatch(/^https:\/\/shop\.example\//)
          }
        }
      }
    }
    expect(redirects).toBeGreaterThan(attacks.length * params.length)
  })

  it('refuses templates that put a macro in scheme://host', async () => {
    for (const destination of ['https://{pub}/x', 'https://shop.example{sub1}/', 'https://a.{src}.example/']) {
      const res = await svc.app.inject({
        method: 'PUT',
        url: '/admin/campaigns/evil',
        headers: adminHeaders,
        payload: { destination, status: 'active' },
      })
      expect(res.statusCode).toBe(400)
      expect(res.json<{ message: string }>().message).toMatch(/^destination:/)
    }
  })
})

describe('POST /clicks (S2S batch)', () => {
  const secret = 'network-secret-0123456789'
  it('answers per item in order, keeps the valid items, and checks ts bounds', async () => {
    const now = Math.floor(Date.now() / 1000)
    const items = [
      { campaign_id: 'plain', pub: 'n1', sub1: 's', ip: '192.0.2.55', ua: 'Mozilla/5.0 app', ts: now - 60 },
      { campaign_id: 'nope' },
      // 30 s past each bound: a loaded box may take seconds between `now` and the server's check.
      { campaign_id: 'plain', ts: now + 330 },
      { campaign_id: 'plain', ts: now - 86_430 },
      { campaign_id: 'plain', ip: 'not-an-ip' },
      { pub: 'no campaign' },
      'not an object',
      { campaign_id: 'macros', pub: 'x y', ts: new Date((now - 10) * 1000).toISOString() },
    ]
    const res = await svc.app.inject({
      method: 'POST',
      url: '/clicks?partner=net',
      headers: { 'x-clickjoin-token': secret },
      payload: items,
    })
    expect(res.statusCode).toBe(200)
    const results = res.json<Array<{ click_id?: string; location?: string; error?: string; message?: string }>>()
    expect(results.map((r) => r.error ?? 'ok')).toEqual([
      'ok',
      'unknown_campaign',
      'invalid_parameter',
      'invalid_parameter',
      'invalid_parameter',
      'invalid_parameter',
      'invalid_parameter',
      'ok',
    ])
    expect(results[2]!.message).toMatch(/^\[2\]\.ts: .*future/)
    expect(results[5]!.message).toMatch(/campaign_id/)
    const stored = new Map((await clicksInKafka()).map((c) => [c.click_id, c]))
    expect(stored.get(results[0]!.click_id!)).toMatchObject({ publisher_id: 'n1', ip: '192.0.2.0', ts: (now - 60) * 1000 })
    expect(stored.get(results[7]!.click_id!)).toMatchObject({ campaign_id: 'macros', ts: (now - 10) * 1000 })
    expect(results[7]!.location).toContain('p=x%20y')
  })

  it('needs partner credentials (signature over the raw body works too) and at most 1,000 items', async () => {
    const body = JSON.stringify([{ campaign_id: 'plain' }])
    const unsigned = await svc.app.inject({ method: 'POST', url: '/clicks?partner=net', headers: { 'content-type': 'application/json' }, payload: body })
    expect(unsigned.statusCode).toBe(401)
    const t = Math.floor(Date.now() / 1000)
    const signed = await svc.app.inject({
      method: 'POST',
      url: '/clicks',
      headers: {
        'content-type': 'application/json',
        'x-clickjoin-partner': 'net',
        'x-clickjoin-signature': `t=${t},v1=${signPayload(secret, t, body)}`,
      },
      payload: body,
    })
    expect(signed.statusCode).toBe(200)
    const tooMany = await svc.app.inject({
      method: 'POST',
      url: '/clicks?partner=net',
      headers: { 'x-clickjoin-token': secret },
      payload: Array.from({ length: 1001 }, () => ({ campaign_id: 'plain' })),
    })
    expect(tooMany.statusCode).toBe(400)
    expect(tooMany.json()).toMatchObject({ error: 'invalid_parameter' })
  })
})

describe('configuration across replicas', () => {
  it('a campaign changed through one instance is used by a second within 1 s', async () => {
    const second = await startTestIngest({
      KAFKA_TOPIC_PREFIX: svc.config.topicPrefix,
      REDIS_KEY_PREFIX: svc.config.redisKeyPrefix,
    })
    try {
      expect((await second.app.inject({ url: '/c/replicated' })).statusCode).toBe(404)
      await putCampaign(svc, 'replicated', { destination: 'https://one.example/', status: 'active' })
      await waitFor(
        async () => (await second.app.inject({ url: '/c/replicated' })).headers.location,
        (l) => typeof l === 'string' && l.startsWith('https://one.example/'),
        1_000,
        'the second instance to redirect to the new destination',
      )
      await putCampaign(svc, 'replicated', { destination: 'https://two.example/', status: 'active' })
      await waitFor(
        async () => (await second.app.inject({ url: '/c/replicated' })).headers.location,
        (l) => typeof l === 'string' && l.startsWith('https://two.example/'),
        1_000,
        'the second instance to use the changed destination',
      )
    } finally {
      await second.stop()
    }
  })
})

describe('graceful shutdown', () => {
  it('answers what is in flight and every 302 it gave is in Kafka', async () => {
    const instance = await startTestIngest()
    await putCampaign(instance, 'g', { destination: 'https://shop.example/', status: 'active' })
    const inFlight = Array.from({ length: 300 }, (_, i) => instance.app.inject({ url: `/c/g?pub=${i}` }))
    await Promise.race(inFlight) // the others are in the handler now, most waiting for their Kafka ack
    await instance.stop()
    const statuses = (await Promise.all(inFlight)).map((r) => r.statusCode)
    const redirected = statuses.filter((s) => s === 302).length
    expect(statuses.every((s) => s === 302 || s === 503)).toBe(true)
    expect(redirected).toBeGreaterThan(0)
    expect((await readTopic(instance.brokers, instance.topics.clicks)).length).toBe(redirected)
  })
})
