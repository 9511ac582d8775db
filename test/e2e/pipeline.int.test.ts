import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClickIdKeyring, generateClickId, parseClickIdKeys } from '@clickjoin/click-id'
import { waitFor } from '@clickjoin/local-stack/testing'
import { startTestPipeline, type TestPipeline } from './harness.ts'

/**
 * The whole pipeline through its public interface only: HTTP to ingest, SQL over HTTP to
 * the sink's embedded ClickHouse. The three services run as separate processes, as under
 * `npm start`.
 */
describe('pipeline end to end', () => {
  const adminToken = 'e2e-admin-token'
  const clickIdKeys = '7:e2e-click-id-secret-0123456789abcdefghij'
  let stack: TestPipeline
  let ingest: string
  let db: string

  beforeAll(async () => {
    stack = await startTestPipeline('e2e', { adminToken, clickIdKeys })
    ingest = stack.ingest
    db = stack.db
  })

  afterAll(async () => {
    await stack?.pipeline.stop()
  })

  async function admin(path: string, body: object): Promise<void> {
    await stack.admin(path, body)
  }

  const query = <T>(text: string) => stack.query<T>(text)

  const browser = (n: number) => `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/13${n}.0 Safari/537.36`

  async function click(campaign: string, params: string, userAgent: string): Promise<string> {
    const res = await fetch(`${ingest}/c/${campaign}?${params}`, { redirect: 'manual', headers: { 'user-agent': userAgent } })
    expect(res.status).toBe(302)
    const location = new URL(res.headers.get('location')!)
    expect(location.origin).toBe('https://shop.example.com')
    return location.searchParams.get('cid')!
  }

  async function postback(params: Record<string, string>): Promise<void> {
    const res = await fetch(`${ingest}/postback?${new URLSearchParams({ partner: 'acme', token: 'acme-secret-123', ...params })}`)
    expect(res.status, await res.clone().text()).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'accepted' })
  }

  it('turns clicks, postbacks and pixel hits into the rows analysts query', async () => {
    const campaign = 'e2e-shoes'
    await admin(`campaigns/${campaign}`, {
      destination: 'https://shop.example.com/landing?cid={click_id}&pub={pub}',
      status: 'active',
      payout: { type: 'cpa', amount: '3.5' },
      pixel_enabled: true,
    })
    await admin('partners/acme', { secret: 'acme-secret-123' })

    const c1 = await click(campaign, 'pub=pub1&sub1=s1', browser(1))
    const c2 = await click(campaign, 'pub=pub1&sub1=s2', browser(2))
    const again = await click(campaign, 'pub=pub1&sub1=s3', browser(1)) // same campaign, IP and browser within 60 s
    const bot = await click(campaign, 'pub=pub1&sub1=s4', 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)')
    expect(c1).toMatch(/^[A-Za-z0-9_-]{32}$/)

    // The browser pixel: the click's cookie stands in for a missing click_id.
    const landing = await fetch(`${ingest}/c/${campaign}?pub=pub2`, { redirect: 'manual', headers: { 'user-agent': browser(3) } })
    const cookie = landing.headers.get('set-cookie')!.split(';')[0]!
    const c3 = new URL(landing.headers.get('location')!).searchParams.get('cid')!
    expect(cookie).toBe(`cj_cid=${c3}`)
    const pixel = await fetch(`${ingest}/pixel.gif?campaign=${campaign}&event=signup`, { headers: { cookie } })
    expect(pixel.status).toBe(200)
    expect(pixel.headers.get('content-type')).toBe('image/gif')

    await postback({ click_id: c1, txn_id: 'order-1', revenue: '20.00' }) // attributed, approved
    await postback({ click_id: c1, txn_id: 'order-1', revenue: '20.00' }) // duplicate: changes nothing
    await postback({ click_id: c2, txn_id: 'order-2', revenue: '5', status: 'pending' })
    await postback({ click_id: c2, txn_id: 'order-2', revenue: '5', status: 'approved' }) // status update
    await postback({ click_id: c2, txn_id: 'order-2', revenue: '5', status: 'rejected' }) // charge-back
    const forged = `${c1.slice(0, 31)}${c1.endsWith('A') ? 'B' : 'A'}`
    await postback({ click_id: forged, txn_id: 'order-3', revenue: '1' })
    // A genuine ID whose click never reached us: rejected once the grace period (3 s) ends.
    const neverClicked = generateClickId(createClickIdKeyring({ keys: parseClickIdKeys(clickIdKeys), currentKeyId: 7 }))
    await postback({ click_id: neverClicked, txn_id: 'order-4', revenue: '1' })

    type Conversion = { click_id: string; event: string; txn_id: string; status: string; outcome: string; reason: string; payout: string; publisher_id: string }
    const conversions = await waitFor(
      () =>
        query<Conversion>(
          `SELECT click_id, event, txn_id, status, outcome, reason, toString(payout) AS payout, publisher_id
           FROM ${db}.conversions FINAL ORDER BY txn_id, event`,
        ).catch(() => []),
      (rows) => rows.length === 5 && rows.some((r) => r.txn_id === 'order-2' && r.status === 'rejected'),
      30_000,
      'five conversions in ClickHouse',
    )
    expect(conversions).toEqual([
      { click_id: c3, event: 'signup', txn_id: '', status: 'approved', outcome: 'attributed', reason: '', payout: '3.5', publisher_id: 'pub2' },
      { click_id: c1, event: 'conversion', txn_id: 'order-1', status: 'approved', outcome: 'attributed', reason: '', payout: '3.5', publisher_id: 'pub1' },
      { click_id: c2, event: 'conversion', txn_id: 'order-2', status: 'rejected', outcome: 'attributed', reason: '', payout: '0', publisher_id: 'pub1' },
      { click_id: forged, event: 'conversion', txn_id: 'order-3', status: 'approved', outcome: 'rejected', reason: 'invalid_click_id', payout: '0', publisher_id: '' },
      { click_id: neverClicked, event: 'conversion', txn_id: 'order-4', status: 'approved', outcome: 'rejected', reason: 'unknown_click', payout: '0', publisher_id: '' },
    ])

    const clicks = await query<{ click_id: string; publisher_id: string; sub1: string; is_bot: number; is_duplicate: number; ip: string }>(
      `SELECT click_id, publisher_id, sub1, is_bot, is_duplicate, toString(ip) AS ip FROM ${db}.clicks
       WHERE campaign_id = '${campaign}' ORDER BY publisher_id, sub1`,
    )
    expect(clicks).toEqual([
      { click_id: c1, publisher_id: 'pub1', sub1: 's1', is_bot: 0, is_duplicate: 0, ip: '127.0.0.0' },
      { click_id: c2, publisher_id: 'pub1', sub1: 's2', is_bot: 0, is_duplicate: 0, ip: '127.0.0.0' },
      { click_id: again, publisher_id: 'pub1', sub1: 's3', is_bot: 0, is_duplicate: 1, ip: '127.0.0.0' },
      { click_id: bot, publisher_id: 'pub1', sub1: 's4', is_bot: 1, is_duplicate: 0, ip: '127.0.0.0' },
      { click_id: c3, publisher_id: 'pub2', sub1: '', is_bot: 0, is_duplicate: 0, ip: '127.0.0.0' },
    ])
    const postbacks = await query<{ channel: string; n: string }>(
      `SELECT channel, count() AS n FROM ${db}.postbacks GROUP BY channel ORDER BY channel`,
    )
    // Every accepted postback and pixel hit, as received (duplicates and updates included).
    expect(postbacks.map((r) => [r.channel, Number(r.n)])).toEqual([
      ['pixel', 1],
      ['postback', 7],
    ])

    type Report = { publisher_id: string; clicks: string; unique_clicks: string; conversions: string; payout: string; revenue: string }
    const report = await query<Report>(
      `SELECT publisher_id, clicks, unique_clicks, conversions, toString(payout) AS payout, toString(revenue) AS revenue
       FROM ${db}.campaign_report WHERE campaign_id = '${campaign}' ORDER BY publisher_id`,
    )
    expect(report.map((r) => ({ ...r, clicks: Number(r.clicks), unique_clicks: Number(r.unique_clicks), conversions: Number(r.conversions) }))).toEqual([
      { publisher_id: 'pub1', clicks: 4, unique_clicks: 2, conversions: 1, payout: '3.5', revenue: '20' },
      { publisher_id: 'pub2', clicks: 1, unique_clicks: 1, conversions: 1, payout: '3.5', revenue: '0' },
    ])
  })

  it('rejects a conversion outside the window as expired, and one long before its click as before_click', async () => {
    // A one-minute window, and S2S clicks registered by the ad network with their own times.
    await admin('campaigns/e2e-short', { destination: 'https://shop.example.com/?cid={click_id}', status: 'active', window_seconds: 60 })
    await admin('partners/acme', { secret: 'acme-secret-123' })
    const now = Math.floor(Date.now() / 1000)
    const res = await fetch(`${ingest}/clicks?partner=acme&token=acme-secret-123`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        { campaign_id: 'e2e-short', pub: 'net1', ts: now - 3_600, ua: browser(4) }, // an hour ago
        { campaign_id: 'e2e-short', pub: 'net1', ts: now, ua: browser(5) },
        { campaign_id: 'no-such-campaign' },
      ]),
    })
    expect(res.status).toBe(200)
    const items = (await res.json()) as Array<{ click_id?: string; error?: string }>
    expect(items[2]).toMatchObject({ error: expect.any(String) as string })
    const [old, fresh] = [items[0]!.click_id!, items[1]!.click_id!]

    await postback({ click_id: old, txn_id: 'late-1', revenue: '9' }) // an hour after a 60 s window opened
    await postback({ click_id: fresh, txn_id: 'early-1', revenue: '9', ts: String(now - 400) }) // 400 s before the click
    await postback({ click_id: fresh, txn_id: 'skew-1', revenue: '9', ts: String(now - 200) }) // within the 300 s skew

    type Row = { txn_id: string; outcome: string; reason: string }
    const rows = await waitFor(
      () =>
        query<Row>(
          `SELECT txn_id, outcome, reason FROM ${db}.conversions FINAL WHERE txn_id IN ('late-1', 'early-1', 'skew-1') ORDER BY txn_id`,
        ).catch(() => []),
      (r) => r.length === 3,
      30_000,
      'three decided conversions',
    )
    expect(rows).toEqual([
      { txn_id: 'early-1', outcome: 'rejected', reason: 'before_click' },
      { txn_id: 'late-1', outcome: 'rejected', reason: 'expired' },
      { txn_id: 'skew-1', outcome: 'attributed', reason: '' },
    ])
  })

  it('the operators\' CLI lists campaigns and runs SQL with a readable table', async () => {
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', ...args], {
        env: { ...stack.pipeline.env, INGEST_URL: ingest, CLICKHOUSE_URL: stack.sql },
      })
    await cli('campaigns', 'set', 'e2e-cli', '--destination', 'https://shop.example.com/?cid={click_id}', '--cpa', '1.25')
    const list = await cli('campaigns', 'list')
    expect(list.stdout).toContain('e2e-cli')
    const link = await cli('link', 'e2e-cli', '--pub', 'p 1')
    expect(link.stdout.trim()).toMatch(/\/c\/e2e-cli\?pub=p(\+|%20)1$/)
    const table = await cli('sql', `SELECT campaign_id, count() AS clicks FROM ${db}.clicks GROUP BY campaign_id`)
    expect(table.stdout).toMatch(/campaign_id.*clicks/)
    expect(table.stdout).toMatch(/e2e-shoes\s*│\s*5/)
    await expect(cli('sql', `DROP TABLE ${db}.clicks`)).rejects.toMatchObject({ code: 1 })
  })
})
