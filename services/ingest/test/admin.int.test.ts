import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '@clickjoin/local-stack'
import { waitFor } from '@clickjoin/local-stack/testing'
import { ADMIN_TOKEN, adminHeaders, startTestIngest } from './harness.ts'
import { loadIngestConfig } from '../src/config.ts'
import { ConfigError } from '@clickjoin/config'

type Service = Awaited<ReturnType<typeof startTestIngest>>
let svc: Service
beforeAll(async () => {
  svc = await startTestIngest({ PUBLIC_URL: 'https://track.example/' })
})
afterAll(async () => {
  await svc?.stop()
})

describe('admin API', () => {
  it('needs the bearer token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: ADMIN_TOKEN }]) {
      const res = await svc.app.inject({ url: '/admin/campaigns', headers })
      expect(res.statusCode).toBe(401)
      expect(res.json()).toMatchObject({ error: 'unauthorized' })
    }
  })

  it('stores campaigns with their defaults, lists them, and builds the tracking link', async () => {
    const put = await svc.app.inject({
      method: 'PUT',
      url: '/admin/campaigns/spring',
      headers: adminHeaders,
      payload: { destination: 'https://shop.example/?c={click_id}', status: 'active', payout: { type: 'cpa', amount: '2.5' } },
    })
    expect(put.statusCode).toBe(200)
    expect(put.json()).toMatchObject({
      id: 'spring',
      window_seconds: 2_592_000,
      currency: 'USD',
      click_id_param: 'click_id',
      passthrough: false,
      pixel_enabled: false,
      fallback_url: null,
      payout: { type: 'cpa', amount: '2.5' },
    })
    expect((await svc.app.inject({ url: '/admin/campaigns/spring', headers: adminHeaders })).json()).toMatchObject({ id: 'spring' })
    const list = await svc.app.inject({ url: '/admin/campaigns', headers: adminHeaders })
    expect(list.json<{ campaigns: Array<{ id: string }> }>().campaigns.map((c) => c.id)).toEqual(['spring'])
    const link = await svc.app.inject({ url: '/admin/campaigns/spring/link?pub=p%201&sub1=x', headers: adminHeaders })
    expect(link.json()).toEqual({ url: 'https://track.example/c/spring?pub=p+1&sub1=x' })
    expect((await svc.app.inject({ url: '/admin/campaigns/none', headers: adminHeaders })).statusCode).toBe(404)
  })

  it('refuses invalid campaigns with 400 naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ status: 'active' }, /^destination: is required/],
      [{ destination: 'ftp://x.example/', status: 'active' }, /^destination:/],
      [{ destination: 'https://x.example/', status: 'running' }, /^status:/],
      [{ destination: 'https://x.example/', status: 'active', pasthrough: true }, /^pasthrough: is not an allowed field/],
      [{ destination: 'https://x.example/', status: 'active', window_seconds: 0 }, /^window_seconds:/],
      [{ destination: 'https://x.example/', status: 'active', currency: 'usd' }, /^currency:/],
    ]
    for (const [payload, message] of cases) {
      const res = await svc.app.inject({ method: 'PUT', url: '/admin/campaigns/bad', headers: adminHeaders, payload })
      expect(res.statusCode).toBe(400)
      expect(res.json<{ message: string }>().message).toMatch(message)
    }
  })

  it('answers 400 naming the field for input that used to be stored or answer 500, and stores nothing', async () => {
    const base = { destination: 'https://x.example/?c={click_id}', status: 'active' }
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...base, fallback_url: 'http://a\u0000b' }, /^fallback_url:/],
      [{ ...base, fallback_url: 'https://fallback.example/\u0007' }, /^fallback_url:/],
      [{ ...base, destination: 'https://shop.example/a\u0000b' }, /^destination:/],
      [{ ...base, destination: 'https://{sub1}.example/' }, /^destination:/],
      [{ ...base, fallback_url: 'https://a.example/{click_id}' }, /^fallback_url:/],
      [{ ...base, destination: 'https://shop.example/caf\u00e9' }, /^destination:/], // a Location header takes ASCII only
      [{ ...base, events: { 'x-y': { payout: { type: 'revshare', percent: {} } } } }, /^events\.x-y: is not an allowed name/],
      [{ ...base, events: { Purchase: {} } }, /^events\.Purchase:/],
      [{ ...base, events: { purchase: { payout: { type: 'revshare', percent: {} } } } }, /^events\.purchase\.payout/],
      [{ ...base, payout: { type: 'revshare', percent: {} } }, /^payout/],
      [{ ...base, payout: { type: 'cpa', amount: '-5' } }, /^payout/],
      [{ ...base, payout: { type: 'cpa' } }, /^payout/],
      [{ ...base, payout: [] }, /^payout/],
      [{ ...base, events: { purchase: { window_seconds: 'x' } } }, /^events\.purchase\.window_seconds/],
    ]
    for (const [payload, message] of cases) {
      const res = await svc.app.inject({ method: 'PUT', url: '/admin/campaigns/hostile', headers: adminHeaders, payload })
      expect(res.statusCode, JSON.stringify(payload)).toBe(400)
      expect(res.json(), JSON.stringify(payload)).toMatchObject({ error: 'invalid_parameter', message: expect.stringMatching(message) as unknown })
    }
    expect((await svc.app.inject({ url: '/admin/campaigns/hostile', headers: adminHeaders })).statusCode).toBe(404)
  })

  it('PATCH changes only the fields given, validates them, and 404s an unknown campaign', async () => {
    const put = { destination: 'https://p.example/?c={click_id}', status: 'active', payout: { type: 'cpa', amount: '2' }, pixel_enabled: true, events: { sale: { repeatable: true } } }
    expect((await svc.app.inject({ method: 'PUT', url: '/admin/campaigns/patchme', headers: adminHeaders, payload: put })).statusCode).toBe(200)
    const patch = await svc.app.inject({ method: 'PATCH', url: '/admin/campaigns/patchme', headers: adminHeaders, payload: { status: 'paused' } })
    expect(patch.statusCode, patch.body).toBe(200)
    expect(patch.json()).toMatchObject({ ...put, status: 'paused' })
    expect((await svc.app.inject({ url: '/admin/campaigns/patchme', headers: adminHeaders })).json()).toMatchObject({ ...put, status: 'paused' })
    const bad = await svc.app.inject({ method: 'PATCH', url: '/admin/campaigns/patchme', headers: adminHeaders, payload: { fallback_url: 'http://a\u0000b' } })
    expect(bad.statusCode).toBe(400)
    expect(bad.json<{ message: string }>().message).toMatch(/^fallback_url:/)
    const unknownField = await svc.app.inject({ method: 'PATCH', url: '/admin/campaigns/patchme', headers: adminHeaders, payload: { sttus: 'active' } })
    expect(unknownField.json()).toMatchObject({ error: 'invalid_parameter', message: expect.stringMatching(/^sttus: is not an allowed field/) as unknown })
    const missing = await svc.app.inject({ method: 'PATCH', url: '/admin/campaigns/nobody', headers: adminHeaders, payload: { status: 'paused' } })
    expect(missing.statusCode).toBe(404)
    expect((await svc.app.inject({ url: '/admin/campaigns/nobody', headers: adminHeaders })).statusCode).toBe(404)
  })

  it('answers 405 with Allow for a method a path does not take, and 404 for an unknown path', async () => {
    for (const [method, url, allow] of [
      ['TRACE', '/admin/campaigns/x', 'GET, HEAD, PATCH, PUT'],
      ['DELETE', '/postback', 'GET, POST'],
      ['OPTIONS', '/c/x', 'GET, HEAD'],
      ['POST', '/pixel.gif', 'GET, HEAD'],
    ] as const) {
      const res = await svc.app.inject({ method, url })
      expect(res.statusCode, `${method} ${url}`).toBe(405)
      expect(res.headers.allow).toBe(allow)
      expect(res.json()).toMatchObject({ error: 'method_not_allowed' })
    }
  })

  it('lists partners without their secrets', async () => {
    await svc.app.inject({ method: 'PUT', url: '/admin/partners/zeta', headers: adminHeaders, payload: { secret: 'zeta-secret-0123' } })
    const res = await svc.app.inject({ url: '/admin/partners', headers: adminHeaders })
    expect(res.statusCode).toBe(200)
    const { partners } = res.json<{ partners: Array<{ id: string }> }>()
    expect(partners.map((p) => p.id)).toContain('zeta')
    expect(res.body).not.toContain('zeta-secret-0123')
  })

  it('`clickjoin campaigns set` changes only what it is given; `partners list` lists', async () => {
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', '--ingest', svc.url(), '--admin-token', ADMIN_TOKEN, ...args], {
        cwd: repoRoot,
      }).then((r) => r.stdout)
    expect(await cli('campaigns', 'set', 'cli-c', '--destination', 'https://cli.example/?c={click_id}', '--cpa', '2', '--pixel')).toContain('campaign cli-c created')
    expect(await cli('campaigns', 'set', 'cli-c', '--status', 'paused')).toContain('campaign cli-c updated: status')
    const stored = (await svc.app.inject({ url: '/admin/campaigns/cli-c', headers: adminHeaders })).json()
    expect(stored).toMatchObject({ destination: 'https://cli.example/?c={click_id}', status: 'paused', payout: { type: 'cpa', amount: '2' }, pixel_enabled: true })
    await expect(cli('campaigns', 'set', 'cli-new', '--status', 'paused')).rejects.toMatchObject({ stderr: expect.stringMatching(/--destination is required/) as unknown })
    await svc.app.inject({ method: 'PUT', url: '/admin/partners/cli-p', headers: adminHeaders, payload: { secret: 'cli-partner-secret' } })
    const partners = await cli('partners', 'list')
    expect(partners).toContain('cli-p')
    expect(partners).not.toContain('cli-partner-secret')
  })

  it('stores partners and never returns the secret', async () => {
    const put = await svc.app.inject({
      method: 'PUT',
      url: '/admin/partners/net',
      headers: adminHeaders,
      payload: { secret: 'a-long-partner-secret', ip_allowlist: ['10.0.0.0/8'] },
    })
    expect(put.statusCode).toBe(200)
    const got = await svc.app.inject({ url: '/admin/partners/net', headers: adminHeaders })
    expect(got.json()).toMatchObject({ id: 'net', ip_allowlist: ['10.0.0.0/8'] })
    expect(put.body + got.body).not.toContain('a-long-partner-secret')
    expect(got.json()).not.toHaveProperty('secret')
    const bad = await svc.app.inject({
      method: 'PUT',
      url: '/admin/partners/net',
      headers: adminHeaders,
      payload: { secret: 'a-long-partner-secret', ip_allowlist: ['example.com'] },
    })
    expect(bad.json()).toMatchObject({ error: 'invalid_parameter', message: expect.stringMatching(/^ip_allowlist\.0:/) as unknown })
  })
})

describe('operations', () => {
  it('health, readiness with each component, Prometheus metrics, OpenAPI document', async () => {
    expect((await svc.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' })
    const ready = await svc.app.inject({ url: '/readyz' })
    expect(ready.statusCode).toBe(200)
    expect(Object.keys(ready.json<{ components: object }>().components).sort()).toEqual(
      ['click-window', 'config-store', 'journal', 'journal-drainer', 'kafka-producer', 'kafka-topics', 'redis', 'redis-subscriber'].sort(),
    )
    await svc.app.inject({ url: '/c/none' })
    const metrics = (await svc.app.inject({ url: '/metrics' })).body
    expect(metrics).toContain('clickjoin_ingest_http_requests_total{route="/c/:campaignId",method="GET",status="404"')
    expect(metrics).toContain('clickjoin_ingest_rejects_total{reason="unknown_campaign"')
    expect(metrics).toContain('clickjoin_ingest_kafka_batch_messages_bucket')
    expect(metrics).toContain('clickjoin_ingest_http_request_duration_seconds_bucket')
    const names = [...metrics.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)
    expect(names.filter((name) => !name.startsWith('clickjoin_ingest_'))).toEqual([])
    expect(new Set(names).size).toBe(names.length) // no name with two types
    const openapi = (await svc.app.inject({ url: '/docs/openapi.json' })).json<{ openapi: string; paths: Record<string, unknown> }>()
    expect(openapi.openapi).toMatch(/^3\./)
    for (const path of ['/c/{campaignId}', '/c', '/clicks', '/postback', '/pixel.gif', '/admin/campaigns/{id}', '/admin/partners/{id}']) {
      expect(openapi.paths, path).toHaveProperty([path])
    }
  })

  it('unknown routes answer a JSON 404', async () => {
    const res = await svc.app.inject({ url: '/nowhere' })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({ error: 'not_found' })
  })

  it('production refuses to start without ADMIN_TOKEN and CLICK_ID_KEYS, naming them', () => {
    try {
      loadIngestConfig({ NODE_ENV: 'production' })
      expect.unreachable()
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).problems.map((p) => p.variable).sort()).toEqual(['ADMIN_TOKEN', 'CLICK_ID_KEYS'])
    }
    const dev = loadIngestConfig({})
    expect(dev.adminToken).toBe('dev-admin-token')
    expect(dev.warnings.join('\n')).toMatch(/ADMIN_TOKEN/)
  })
})

describe('load shedding', () => {
  it('answers 503 with Retry-After and a JSON error while the event loop lags past the limit', async () => {
    const shedding = await startTestIngest({ INGEST_MAX_EVENT_LOOP_DELAY_MS: '20', INGEST_RETRY_AFTER_SECONDS: '7' })
    try {
      const blockEventLoop = (ms: number) => {
        const until = Date.now() + ms
        while (Date.now() < until) {
          // busy: what a CPU-starved replica looks like to under-pressure
        }
      }
      const res = await waitFor(
        async () => {
          // under-pressure compares the mean delay of each 1 s sample: block across a whole sample
          blockEventLoop(1_200)
          await new Promise((resolve) => setTimeout(resolve, 5)) // its sampling timer runs first
          const res = await shedding.app.inject({ url: '/c/anything' })
          return { statusCode: res.statusCode, headers: res.headers, body: res.body }
        },
        (r) => r.statusCode === 503,
        20_000,
        'a 503 from the load shedder',
      )
      expect(res.headers['retry-after']).toBe('7')
      expect(JSON.parse(res.body)).toMatchObject({ error: 'unavailable', message: expect.stringMatching(/overloaded/) as unknown })
    } finally {
      await shedding.stop()
    }
  })
})
