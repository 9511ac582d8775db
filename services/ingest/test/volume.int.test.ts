import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { InjectOptions } from 'fastify'
import fc from 'fast-check'
import { readTopic } from '@clickjoin/local-stack/testing'
import { signPayload } from '../src/domain/partner-auth.ts'
import { wellFormed } from '../src/domain/text.ts'
import { ADMIN_TOKEN, putCampaign, putPartner, startTestIngest } from './harness.ts'

type Service = Awaited<ReturnType<typeof startTestIngest>>

/** CI-sized defaults that meet the minimum; raise them for a soak run. */
const VOLUME_REQUESTS = Number(process.env['INGEST_VOLUME_REQUESTS'] ?? 10_000)
const FUZZ_REQUESTS = Number(process.env['INGEST_FUZZ_REQUESTS'] ?? 10_000)
const CONCURRENCY = 64
const SECRET = 'partner-secret-0123456789'

let svc: Service
beforeAll(async () => {
  svc = await startTestIngest()
  await putPartner(svc, 'net', { secret: SECRET })
  await putCampaign(svc, 'a', { destination: 'https://shop.example/a?c={click_id}&p={pub}', status: 'active', passthrough: true })
  await putCampaign(svc, 'b', { destination: 'https://shop.example/b', status: 'active', pixel_enabled: true })
})
afterAll(async () => {
  await svc?.stop()
})

/** Runs `count` requests with at most CONCURRENCY in flight; returns every answer in order. */
async function runPool<T>(count: number, run: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count)
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++
        results[i] = await run(i)
      }
    }),
  )
  return results
}

describe('every 2xx/302 answer is a record in Kafka, exactly', () => {
  it(`${VOLUME_REQUESTS} mixed clicks and postbacks`, async () => {
    const request = (i: number): InjectOptions => {
      const t = Math.floor(Date.now() / 1000)
      switch (i % 8) {
        case 0:
        case 1:
          return { url: `/c/a?pub=p${i}&sub1=${i}&x=${i}`, remoteAddress: `198.51.100.${i % 250}` }
        case 2:
          return { url: `/c?campaign=b&format=json&pub=${i}` }
        case 3:
          return { url: `/postback?partner=net&token=${SECRET}&click_id=v${i}&revenue=${i % 100}.25&txn_id=t${i}` }
        case 4: {
          const body = JSON.stringify({ click_id: `v${i}`, event: 'sale', currency: 'EUR' })
          return {
            method: 'POST',
            url: '/postback',
            headers: { 'content-type': 'application/json', 'x-clickjoin-partner': 'net', 'x-clickjoin-signature': `t=${t},v1=${signPayload(SECRET, t, body)}` },
            payload: body,
          }
        }
        case 5:
          return { url: `/c/unknown-${i % 3}` } // 404, nothing recorded
        case 6:
          return { url: `/postback?partner=net&token=wrong-${i}&click_id=v${i}` } // 401
        default:
          return { url: `/postback?partner=net&token=${SECRET}&click_id=v${i}&revenue=-${i}` } // 400
      }
    }
    const answers = await runPool(VOLUME_REQUESTS, async (i) => (await svc.app.inject(request(i))).statusCode)
    const ok = answers.filter((s) => s === 200 || s === 302).length
    const refused = answers.filter((s) => s >= 400 && s < 500).length
    expect(ok + refused).toBe(VOLUME_REQUESTS)
    const [clicks, conversions] = await Promise.all([
      readTopic(svc.brokers, svc.topics.clicks, 60_000),
      readTopic(svc.brokers, svc.topics.conversions, 60_000),
    ])
    console.log(`${VOLUME_REQUESTS} requests: ${ok} accepted (2xx/302), ${refused} refused; Kafka holds ${clicks.length} clicks + ${conversions.length} conversions`)
    expect(clicks.length + conversions.length).toBe(ok)
  })
})

describe('fuzz: random requests over every route', () => {
  const paramNames = ['campaign', 'pub', 'sub1', 'sub2', 'sub3', 'sub4', 'sub5', 'src', 'cr', 'uid', 'format', 'click_id', 'partner', 'token', 'event', 'txn_id', 'revenue', 'currency', 'status', 'ts']
  const value = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom('', 'json', 'a', 'b', 'net', SECRET, '12.5', '-1', '1e9', 'EUR', 'eur', 'approved', 'pending', 'conversion', '1767225600', '2026-01-01T00:00:00Z', '//evil.example', 'javascript:alert(1)', '%', '%zz', '\u0000'),
    fc.nat().map(String),
    fc.integer({ min: 100, max: 2000 }).map((n) => 'x'.repeat(n)),
  )
  // Lone surrogates cannot travel in a URL at all; the server-side handling is unit-tested.
  const encode = (text: string) => encodeURIComponent(wellFormed(text))
  const query = fc
    .array(fc.tuple(fc.oneof(fc.constantFrom(...paramNames), fc.string({ maxLength: 8 })), value, fc.boolean()), { maxLength: 8 })
    .map((pairs) => pairs.map(([k, v, raw]) => `${encode(k)}=${raw ? v.replace(/[^A-Za-z0-9%._~-]/gu, encode) : encode(v)}`).join('&'))
  const path = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('/c/a', '/c/b', '/c', '/postback', '/postback', '/pixel.gif', '/clicks') },
    fc.constantFrom('/c/a', '/c/b', '/c/nope', '/c', '/clicks', '/postback', '/pixel.gif', '/admin/campaigns', '/admin/campaigns/a', '/admin/campaigns/fz', '/admin/partners/net', '/admin/campaigns/a/link', '/healthz', '/readyz', '/docs/openapi.json', '/'),
    fc.string({ maxLength: 30 }).map((s) => `/${encode(s)}`),
    fc.string({ maxLength: 300 }).map((s) => `/c/${encode(s)}`),
  )
  const jsonBody = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.dictionary(fc.constantFrom(...paramNames, 'destination', 'secret', 'ip_allowlist', 'campaign_id', 'ip', 'ua'), value).map((v) => JSON.stringify(v)),
    fc.array(fc.dictionary(fc.constantFrom('campaign_id', 'pub', 'ip', 'ua', 'ts'), fc.oneof(value, fc.constantFrom('a', 'b'))), { maxLength: 5 }).map((v) => JSON.stringify(v)),
    fc.constantFrom('{"destination":"https://shop.example/{pub}","status":"active"}', '{"secret":"fuzz-secret-0123456789"}', '{', '[]', 'null'),
  )
  const body = fc.oneof(
    fc.constant(undefined),
    fc.record({ type: fc.constant('application/json'), payload: jsonBody }),
    fc.record({ type: fc.constant('application/x-www-form-urlencoded'), payload: query }),
    fc.record({ type: fc.constantFrom('text/plain', 'application/xml', 'multipart/form-data', 'application/json; charset=latin1'), payload: fc.string({ maxLength: 50 }) }),
  )
  const headers = fc.record(
    {
      accept: fc.constantFrom('application/json', 'text/html', '*/*'),
      'x-clickjoin-partner': fc.constantFrom('net', 'nope', ''),
      'x-clickjoin-token': fc.constantFrom(SECRET, 'wrong'),
      'x-clickjoin-signature': fc.oneof(fc.string({ maxLength: 30 }), fc.constant(`t=${Math.floor(Date.now() / 1000)},v1=${'ab'.repeat(32)}`)),
      authorization: fc.constantFrom(`Bearer ${ADMIN_TOKEN}`, 'Bearer nope', 'Basic x'),
      cookie: fc.string({ maxLength: 40 }).map((s) => `cj_cid=${encode(s)}`),
      'user-agent': fc.oneof(fc.string({ maxLength: 50 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), fc.constant('Googlebot/2.1')),
    },
    { requiredKeys: [] },
  )
  const requestArb = fc.record({
    method: fc.constantFrom('GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'PUT', 'HEAD', 'DELETE'),
    path,
    query,
    headers,
    body,
  })

  it(`${FUZZ_REQUESTS} random requests: no 5xx, every refusal a 4xx with a JSON error body`, async () => {
    const seed = Number(process.env['INGEST_FUZZ_SEED'] ?? Date.now() % 1_000_000)
    const requests = fc.sample(requestArb, { numRuns: FUZZ_REQUESTS, seed })
    const failures: string[] = []
    const statuses = new Map<number, number>()
    await runPool(requests.length, async (i) => {
      const r = requests[i]!
      const options: InjectOptions = {
        method: r.method as 'GET',
        url: r.query ? `${r.path}?${r.query}` : r.path,
        headers: { ...r.headers, ...(r.body ? { 'content-type': r.body.type } : {}) },
        ...(r.body && r.method !== 'GET' && r.method !== 'HEAD' ? { payload: r.body.payload } : {}),
      }
      const res = await svc.app.inject(options)
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
      const describe = `seed ${seed} #${i}: ${r.method} ${options.url} → ${res.statusCode} ${res.body.slice(0, 200)}`
      if (res.statusCode >= 500) failures.push(describe)
      else if (res.statusCode >= 400 && r.method !== 'HEAD') {
        let ok = false
        try {
          const parsed = res.json<{ error?: unknown; message?: unknown }>()
          ok = typeof parsed.error === 'string' && typeof parsed.message === 'string'
        } catch {
          ok = false
        }
        if (!ok || !String(res.headers['content-type']).startsWith('application/json')) failures.push(describe)
      }
    })
    console.log(`fuzz seed ${seed}: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`)
    expect(failures.slice(0, 10)).toEqual([])
  })
})
