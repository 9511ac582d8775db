import { createHmac } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '@clickjoin/local-stack/testing'
import { startTestPipeline, type TestPipeline } from './harness.ts'

/**
 * Issue 10 through the public interface only (HTTP to ingest, SQL to the sink's ClickHouse):
 * the pixel is bound to its campaign, a signed postback counts once, a conversion within the
 * clock-skew allowance has ctit_ms 0.
 */
describe('payout integrity end to end', () => {
  const secret = 'partner-p-secret-0123'
  let stack: TestPipeline
  let ingest: string
  let db: string
  const admin = (path: string, body: object) => stack.admin(path, body)
  const query = <T>(text: string) => stack.query<T>(text)

  beforeAll(async () => {
    stack = await startTestPipeline('integrity', { adminToken: 'integrity-admin-token', clickIdKeys: '3:integrity-click-id-secret-0123456789abcdef' })
    ingest = stack.ingest
    db = stack.db
    await admin('partners/P', { secret })
  })

  afterAll(async () => {
    await stack?.pipeline.stop()
  })

  async function click(campaign: string): Promise<string> {
    const res = await fetch(`${ingest}/c/${campaign}?format=json`, { headers: { 'user-agent': `Mozilla/5.0 test ${Math.random()}` } })
    expect(res.status).toBe(200)
    return ((await res.json()) as { click_id: string }).click_id
  }

  async function pixel(params: Record<string, string>): Promise<void> {
    const res = await fetch(`${ingest}/pixel.gif?${new URLSearchParams(params)}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-clickjoin-result')).toBe('accepted')
  }

  async function postback(params: Record<string, string>, signed = false): Promise<{ status: number; body: { status?: string } }> {
    const search = new URLSearchParams({ partner: 'P', ...(signed ? {} : { token: secret }), ...params }).toString()
    const t = Math.floor(Date.now() / 1000)
    const headers: Record<string, string> = signed
      ? { 'x-clickjoin-signature': `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${search}`).digest('hex')}` }
      : {}
    const res = await fetch(`${ingest}/postback?${search}`, { headers })
    return { status: res.status, body: (await res.json()) as { status?: string } }
  }

  type Conversion = { click_id: string; partner_id: string; campaign_id: string; txn_id: string; status: string; outcome: string; reason: string; payout: string }
  const conversionsOf = (clickIds: string[]) =>
    query<Conversion>(
      `SELECT click_id, partner_id, campaign_id, txn_id, status, outcome, reason, toString(payout) AS payout
       FROM ${db}.conversions FINAL WHERE click_id IN (${clickIds.map((c) => `'${c}'`).join(',')})
       ORDER BY campaign_id, txn_id, partner_id`,
    ).catch(() => [])

  it('binds the pixel to its campaign: it never touches a partner conversion nor another shop, and is checked on the click', async () => {
    await admin('campaigns/shop-a', { destination: 'https://a.example/?cid={click_id}', status: 'active', pixel_enabled: true, payout: { type: 'cpa', amount: '2' } })
    await admin('campaigns/shop-b', { destination: 'https://b.example/?cid={click_id}', status: 'active', pixel_enabled: true, payout: { type: 'cpa', amount: '1' } })
    await admin('campaigns/shop-off', { destination: 'https://off.example/?cid={click_id}', status: 'active', payout: { type: 'cpa', amount: '5' } })
    const [clickA, clickB, clickOff] = [await click('shop-a'), await click('shop-b'), await click('shop-off')]

    // Partner P's approved S2S conversion of order 1001…
    expect((await postback({ click_id: clickA, txn_id: '1001', revenue: '10' })).body).toMatchObject({ status: 'accepted' })
    await waitFor(() => conversionsOf([clickA]), (rows) => rows.length === 1, 30_000, "P's conversion")
    // …then a browser says "partner=P, order 1001, rejected": the pixel has no partner, it is shop-a's own order 1001.
    await pixel({ campaign: 'shop-a', click_id: clickA, partner: 'P', txn_id: '1001', status: 'rejected' })
    // Another shop's order 1001 is another conversion.
    await pixel({ campaign: 'shop-b', click_id: clickB, txn_id: '1001' })
    // A pixel naming another campaign than its click's, and one of a campaign without pixel_enabled.
    await pixel({ campaign: 'shop-b', click_id: clickA, txn_id: 'mismatch-1' })
    await pixel({ campaign: 'shop-off', click_id: clickOff, txn_id: 'off-1' })

    const rows = await waitFor(() => conversionsOf([clickA, clickB, clickOff]), (r) => r.length === 5, 30_000, 'five conversions')
    expect(rows).toEqual([
      { click_id: clickA, partner_id: '', campaign_id: 'shop-a', txn_id: '1001', status: 'rejected', outcome: 'attributed', reason: '', payout: '0' },
      { click_id: clickA, partner_id: 'P', campaign_id: 'shop-a', txn_id: '1001', status: 'approved', outcome: 'attributed', reason: '', payout: '2' },
      { click_id: clickA, partner_id: '', campaign_id: 'shop-a', txn_id: 'mismatch-1', status: 'approved', outcome: 'rejected', reason: 'campaign_mismatch', payout: '0' },
      { click_id: clickB, partner_id: '', campaign_id: 'shop-b', txn_id: '1001', status: 'approved', outcome: 'attributed', reason: '', payout: '1' },
      { click_id: clickOff, partner_id: '', campaign_id: 'shop-off', txn_id: 'off-1', status: 'approved', outcome: 'rejected', reason: 'pixel_disabled', payout: '0' },
    ])
  })

  it('counts a signed repeatable postback once however often it is sent within its window', async () => {
    await admin('campaigns/game', { destination: 'https://game.example/?cid={click_id}', status: 'active', events: { level_up: { repeatable: true } } })
    const clickId = await click('game')
    const params = { click_id: clickId, event: 'level_up', revenue: '1' }
    const t = Math.floor(Date.now() / 1000)
    const signedQuery = new URLSearchParams({ partner: 'P', ...params }).toString()
    const headers = { 'x-clickjoin-signature': `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${signedQuery}`).digest('hex')}` }
    const answers = []
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${ingest}/postback?${signedQuery}`, { headers })
      expect(res.status).toBe(200)
      answers.push(((await res.json()) as { status: string }).status)
    }
    expect(answers).toEqual(['accepted', 'duplicate', 'duplicate'])
    // A token postback of the same repeatable event is another conversion: the marker that all earlier ones are in.
    expect((await postback(params)).body).toMatchObject({ status: 'accepted' })
    const rows = await waitFor(() => conversionsOf([clickId]), (r) => r.length >= 2, 30_000, 'the repeatable conversions')
    expect(rows).toHaveLength(2)
    // The raw postbacks reach their own table by their own sink round, not with the conversions.
    const received = await waitFor(
      async () => Number((await query<{ n: string }>(`SELECT count() AS n FROM ${db}.postbacks WHERE click_id = '${clickId}'`))[0]!.n),
      (n) => n >= 2,
      30_000,
      'the received postbacks',
    )
    expect(received).toBe(2)
  })

  it('stores a conversion within the 300 s clock-skew allowance as at the click: ctit_ms 0', async () => {
    await admin('campaigns/skew', { destination: 'https://skew.example/?cid={click_id}', status: 'active' })
    const clickedAt = Date.now()
    const clickId = await click('skew')
    await postback({ click_id: clickId, txn_id: 'skew-1', ts: String(Math.floor(clickedAt / 1000) - 120) })
    const rows = await waitFor(
      () => query<{ outcome: string; ctit_ms: string; is_fast: number }>(`SELECT outcome, ctit_ms, is_fast FROM ${db}.conversions FINAL WHERE click_id = '${clickId}'`).catch(() => []),
      (r) => r.length === 1,
      30_000,
      'the skew conversion',
    )
    expect(rows.map((r) => ({ ...r, ctit_ms: Number(r.ctit_ms) }))).toEqual([{ outcome: 'attributed', ctit_ms: 0, is_fast: 1 }])
  })
})
