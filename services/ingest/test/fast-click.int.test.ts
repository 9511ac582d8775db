import { request } from 'node:http'
import { createServer } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readTopic } from '@clickjoin/local-stack/testing'
import type { ClickV1 } from '@clickjoin/contracts'
import { putCampaign, putTrackingCampaigns, startTestIngest } from './harness.ts'

// The tracking link's fast path (src/routes/fast-click.ts) answers plain clicks before fastify.
// These tests send the same requests over real HTTP to an ingest with it and to one without
// (every request through fastify), and compare what a visitor, Kafka and /metrics see.

type Service = Awaited<ReturnType<typeof startTestIngest>>
interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}
interface Probe {
  path: string
  method?: string
  headers?: Record<string, string>
  /** Served by the fast path (the others go to fastify). */
  fast: boolean
}

/** One request over a fresh connection, the path sent exactly as written. */
function send(service: Service, probe: Probe): Promise<Answer> {
  const { port } = new URL(service.url())
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: probe.path, method: probe.method ?? 'GET', headers: probe.headers ?? {}, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => {
        const headers: Record<string, string> = {}
        for (const [name, value] of Object.entries(res.headers)) headers[name] = Array.isArray(value) ? value.join('\n') : String(value)
        resolve({ status: res.statusCode ?? 0, headers, body })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

const CLICK_ID = /[A-Za-z0-9_-]{32}/g

/** What must be equal on both paths: every header but the date, click IDs replaced. */
function comparable(answer: Answer): Answer {
  const headers = Object.fromEntries(
    Object.entries(answer.headers)
      .filter(([name]) => name !== 'date')
      .map(([name, value]) => [name, value.replace(CLICK_ID, '<click id>')]),
  )
  return { status: answer.status, headers, body: answer.body.replace(CLICK_ID, '<click id>') }
}

function clickIdOf(answer: Answer): string | undefined {
  return /cj_cid=([A-Za-z0-9_-]{32})/.exec(answer.headers['set-cookie'] ?? '')?.[1]
}

/** The event as the analyst sees it, without what differs by construction (ID, time). */
function eventShape(click: ClickV1): ClickV1 {
  return { ...click, click_id: '<click id>', ts: 0, destination: click.destination.replace(CLICK_ID, '<click id>') }
}

async function clicksOf(service: Service): Promise<Map<string, ClickV1>> {
  const messages = await readTopic(service.brokers, service.topics.clicks)
  const clicks = new Map<string, ClickV1>()
  for (const m of messages) {
    const click = JSON.parse(m.value) as ClickV1
    expect(clicks.has(click.click_id), `${click.click_id} in Kafka once`).toBe(false)
    clicks.set(click.click_id, click)
  }
  return clicks
}

function requestCounts(metrics: string): string[] {
  return metrics.split('\n').filter((line) => line.startsWith('clickjoin_ingest_http_requests_total{route="/c'))
}

async function setUpCampaigns(service: Service): Promise<void> {
  await putTrackingCampaigns(service)
  // 20 × a 512-character sub1 is over the 8,192 characters a destination may have: 414.
  await putCampaign(service, 'long', { destination: `https://shop.example/l?${'s={sub1}&'.repeat(20)}`, status: 'active' })
}

const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', referer: 'https://pub.example/page' }
const probes: Probe[] = [
  { path: '/c/macros?pub=p%201&sub1=a%26b&sub2=%C3%A9&src=fb%3Dx&cr=%2B&uid=u1&other=z', headers: browser, fast: true },
  // The same visitor again: a duplicate on both.
  { path: '/c/macros?pub=p%201&sub1=a%26b&sub2=%C3%A9&src=fb%3Dx&cr=%2B&uid=u1&other=z', headers: browser, fast: true },
  { path: '/c?campaign=plain&pub=7', headers: { 'user-agent': 'curl/8.5.0' }, fast: true },
  { path: '/c/pass?pub=7&utm_source=news&utm_term=a%20b&utm_term=c', fast: true },
  { path: '/c/plain?pub=7', headers: { 'x-request-id': 'lb-7f3a' }, fast: true },
  { path: '/c/plain?pub=8', headers: { 'user-agent': 'Googlebot/2.1 (+http://www.google.com/bot.html)' }, fast: true },
  // A proxy in front (INGEST_TRUST_PROXY=true on both): the visitor's IP and https.
  { path: '/c/plain?pub=9', headers: { 'x-forwarded-for': '203.0.113.9, 10.0.0.1', 'x-forwarded-proto': 'https' }, fast: true },
  // The rest is fastify's, answered as before.
  { path: '/c/plain?pub=7&pub=8', fast: false },
  { path: `/c/plain?sub1=${'x'.repeat(513)}`, fast: false },
  { path: `/c/long?sub1=${'x'.repeat(512)}`, fast: false },
  { path: '/c/nope?pub=1', fast: false },
  { path: '/c/paused?pub=1', fast: false },
  { path: '/c/plain?format=json', headers: browser, fast: false },
  { path: '/c/plain?pub=1', headers: { accept: 'application/json' }, fast: false },
  { path: '/c/pl%61in?pub=1', fast: false },
  { path: '/c/plain/?pub=1', fast: false },
  { path: '/c/plain', method: 'HEAD', headers: browser, fast: false },
  { path: '/c', fast: false },
  { path: '/c?campaign=bad%20id', fast: false },
  { path: '/c/plain?pub=1', method: 'POST', fast: false },
  { path: '/cx/plain', fast: false },
]

describe('the tracking link outside fastify', () => {
  let fast: Service
  let fastify: Service
  const answers = new Map<Service, Answer[]>()

  beforeAll(async () => {
    const env = { INGEST_TRUST_PROXY: 'true' }
    ;[fast, fastify] = await Promise.all([startTestIngest(env), startTestIngest({ ...env, INGEST_FAST_CLICK_PATH: 'false' })])
    await Promise.all([setUpCampaigns(fast), setUpCampaigns(fastify)])
    for (const service of [fast, fastify]) {
      const list: Answer[] = []
      for (const probe of probes) list.push(await send(service, probe))
      answers.set(service, list)
    }
  })
  afterAll(async () => {
    await Promise.all([fast?.stop(), fastify?.stop()])
  })

  it('is on by default, and serves exactly the plain clicks', () => {
    expect(fastify.app.fastClickPath).toBeUndefined()
    expect(fast.app.fastClickPath?.served).toBe(probes.filter((p) => p.fast).length)
  })

  it('answers every request with the status, headers and body fastify answers', () => {
    const got = answers.get(fast)!.map(comparable)
    const expected = answers.get(fastify)!.map(comparable)
    probes.forEach((probe, i) => expect(got[i], `${probe.method ?? 'GET'} ${probe.path.slice(0, 80)}`).toEqual(expected[i]))
    // And what a visitor gets, spelled out for two of them.
    const first = answers.get(fast)![0]!
    expect(first.status).toBe(302)
    expect(first.headers['location']).toBe(`https://shop.example/land/macros?cid=${clickIdOf(first)}&p=p%201&s=a%26b,%C3%A9,,,&src=fb%3Dx&cr=%2B`)
    expect(first.headers['cache-control']).toBe('no-store')
    expect(first.headers['set-cookie']).toBe(`cj_cid=${clickIdOf(first)}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`)
    expect(answers.get(fast)![4]!.headers['x-request-id']).toBe('lb-7f3a')
    expect(answers.get(fast)![6]!.headers['set-cookie']).toContain('; Secure')
    expect(answers.get(fast)![9]).toMatchObject({ status: 414 })
  })

  it('records each redirected click in Kafka once, with the same fields as fastify’s route', async () => {
    const [fastClicks, fastifyClicks] = await Promise.all([clicksOf(fast), clicksOf(fastify)])
    const redirected = (service: Service) => answers.get(service)!.map(clickIdOf)
    const fastIds = redirected(fast)
    const fastifyIds = redirected(fastify)
    // A click in Kafka for every cookie answered, and no other (a HEAD is a bot's click, also recorded).
    expect(new Set(fastClicks.keys())).toEqual(new Set(fastIds.filter((id) => id !== undefined)))
    probes.forEach((probe, i) => {
      const ours = fastIds[i]
      const theirs = fastifyIds[i]
      expect(ours === undefined, probe.path).toBe(theirs === undefined)
      if (ours === undefined || theirs === undefined) return
      expect(eventShape(fastClicks.get(ours)!), probe.path).toEqual(eventShape(fastifyClicks.get(theirs)!))
    })
    const first = fastClicks.get(fastIds[0]!)!
    expect(first).toMatchObject({ campaign_id: 'macros', publisher_id: 'p 1', sub1: 'a&b', sub2: 'é', user_key: 'u1', ip: '127.0.0.0', is_duplicate: false })
    expect(fastClicks.get(fastIds[1]!)!.is_duplicate).toBe(true)
    expect(fastClicks.get(fastIds[5]!)!.is_bot).toBe(true)
    expect(fastClicks.get(fastIds[6]!)!.ip).toBe('203.0.113.0')
  })

  it('counts its answers in the same /metrics series', async () => {
    const scrape = async (service: Service) => requestCounts((await service.app.inject({ url: '/metrics' })).body)
    const ours = await scrape(fast)
    expect(ours).toEqual(await scrape(fastify))
    expect(ours).toContain('clickjoin_ingest_http_requests_total{route="/c/:campaignId",method="GET",status="302",service="ingest"} 9')
  })
})

async function unusedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

describe('a click the fast path cannot record', () => {
  it('is answered as fastify answers it: 503 with Retry-After once the journal is full, and only 302s are journaled', async () => {
    // No broker at all: visitors' clicks go to the journal until it is full.
    const env = { KAFKA_BROKERS: `127.0.0.1:${await unusedPort()}`, INGEST_JOURNAL_MAX_BYTES: '12000' }
    const [fast, fastify] = await Promise.all([startTestIngest(env), startTestIngest({ ...env, INGEST_FAST_CLICK_PATH: 'false' })])
    try {
      const results = new Map<Service, Answer[]>()
      for (const service of [fast, fastify]) {
        await putCampaign(service, 'plain', { destination: 'https://shop.example/offer', status: 'active' })
        const list: Answer[] = []
        for (let i = 0; i < 200 && list.at(-1)?.status !== 503; i++) {
          list.push(await send(service, { path: `/c/plain?pub=${i}`, headers: { 'user-agent': `agent-${i}` }, fast: true }))
        }
        results.set(service, list)
        expect(service.journal.stats().events).toBe(list.filter((a) => a.status === 302).length)
      }
      const refused = results.get(fast)!.at(-1)!
      expect(refused.status).toBe(503)
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
      expect(comparable(refused)).toEqual(comparable(results.get(fastify)!.at(-1)!))
      expect(results.get(fast)!.filter((a) => a.status !== 302 && a.status !== 503)).toEqual([])
      expect(fast.app.fastClickPath?.served).toBe(results.get(fast)!.length - 1)
    } finally {
      await Promise.all([fast.stop(), fastify.stop()])
    }
  })
})
