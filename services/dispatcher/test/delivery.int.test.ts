import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { waitFor } from '@clickjoin/local-stack/testing'
import { createDispatcherService, type DispatcherService } from '../src/service.ts'
import { createWorld, newSecret, outcome, startReceiver, type Receiver, type TestWorld } from './harness.ts'

const MACRO_TEMPLATE =
  '/pb/{pub}?c={click_id}&cv={conversion_id}&t={txn_id}&e={event}&s={status}&p={payout}&r={revenue}' +
  '&cur={currency}&cmp={campaign_id}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}&ts={ts}'

describe('dispatcher delivers publisher postbacks', () => {
  let world: TestWorld
  let service: DispatcherService
  const receivers: Receiver[] = []
  const receiver = async (options: Parameters<typeof startReceiver>[0]) => {
    const r = await startReceiver(options)
    receivers.push(r)
    return r
  }

  beforeAll(async () => {
    world = await createWorld('disp')
    service = await createDispatcherService(
      world.config({ DISPATCH_FIRST_RETRY_DELAY_MS: '100', DISPATCH_MAX_RETRY_DELAY_MS: '400', DISPATCH_HOST_CONCURRENCY: '2' }),
    )
    await service.start()
  })
  afterAll(async () => {
    for (const r of receivers) await r.close() // first: hung calls end now rather than at the timeout
    await service?.stop()
    await world?.close()
  })

  it('calls once per conversion version with every macro URL-encoded and a verifiable signature; a charge-back calls again', async () => {
    const secret = newSecret()
    const rx = await receiver({ secret })
    await world.putPublisher('pub-macro', {
      secret,
      postbacks: [
        { url: `${rx.origin}${MACRO_TEMPLATE}`, statuses: ['approved', 'rejected'] },
        { url: `${rx.origin}/json`, method: 'POST', events: ['purchase'], campaigns: ['summer'] },
        { url: `${rx.origin}/never`, events: ['lead'] },
      ],
    })
    const approved = outcome('pub-macro')
    const pending = outcome('pub-macro', { status: 'pending', payout: '0' })
    const notAttributed = outcome('pub-macro', { outcome: 'rejected', reason: 'expired', payout: '0' })
    await world.publishOutcomes([approved, pending, notAttributed])
    // The same version again (a replayed outcome) must not call again.
    await world.publishOutcomes([approved])

    await waitFor(() => rx.calls.length, (n) => n >= 2, 20_000, 'the approved conversion to be delivered')
    const get = rx.calls.find((c) => c.url.pathname.startsWith('/pb/'))!
    expect(get.method).toBe('GET')
    expect(get.url.pathname).toBe('/pb/pub-macro')
    expect(Object.fromEntries(get.url.searchParams)).toEqual({
      c: approved.click_id,
      cv: approved.conversion_id,
      t: approved.txn_id,
      e: 'purchase',
      s: 'approved',
      p: '5.25',
      r: '49.9',
      cur: 'EUR',
      cmp: 'summer',
      s1: approved.sub1,
      s2: 's2',
      s3: '',
      s4: 's4',
      s5: 'ü',
      ts: String(Math.floor(approved.conversion_ts / 1000)),
    })
    expect(get.headers['webhook-id']).toBe(`${approved.conversion_id}:1`)
    const post = rx.calls.find((c) => c.url.pathname === '/json')!
    expect(post.method).toBe('POST')
    expect(post.headers['content-type']).toBe('application/json')
    expect(JSON.parse(post.body)).toMatchObject({ conversion_id: approved.conversion_id, version: 1, pub: 'pub-macro', payout: '5.25', sub1: approved.sub1 })
    for (const call of rx.calls) expect(call.verified).toBe(true)

    // approved → rejected (charge-back): version 2 reaches the rule that asked for rejected.
    await world.publishOutcomes([{ ...approved, version: 2, status: 'rejected', payout: '0', postback_id: 'pb-cb' }])
    await waitFor(() => rx.calls.length, (n) => n >= 3, 20_000, 'the charge-back to be delivered')
    const chargeBack = rx.calls[2]!
    expect(chargeBack.headers['webhook-id']).toBe(`${approved.conversion_id}:2`)
    expect(chargeBack.url.searchParams.get('s')).toBe('rejected')
    expect(chargeBack.verified).toBe(true)

    const records = await waitFor(() => world.deliveries(), (d) => d.length >= 3, 20_000, 'three delivery records')
    expect(records.map((r) => [r.webhook_id, r.state, r.status_code, r.attempt]).sort()).toEqual(
      [
        [`${approved.conversion_id}:1`, 'delivered', 200, 1],
        [`${approved.conversion_id}:1`, 'delivered', 200, 1],
        [`${approved.conversion_id}:2`, 'delivered', 200, 1],
      ].sort(),
    )
    // Nothing else arrives: the replay, the pending one, the unattributed one and the lead rule stay silent.
    expect(rx.calls).toHaveLength(3)
    expect(await service.queue.pendingCount()).toBe(0)
  })

  it('retries a receiver that answers 500 three times with the same webhook-id, and ends delivered', async () => {
    const secret = newSecret()
    const rx = await receiver({ secret, answer: (_call, i) => (i < 3 ? 500 : 200) })
    await world.putPublisher('pub-retry', { secret, postbacks: [{ url: `${rx.origin}/retry?c={click_id}` }] })
    const conversion = outcome('pub-retry')
    await world.publishOutcomes([conversion])
    await waitFor(() => rx.calls.length, (n) => n >= 4, 30_000, 'four calls')
    expect(new Set(rx.calls.map((c) => c.headers['webhook-id']))).toEqual(new Set([`${conversion.conversion_id}:1`]))
    for (const call of rx.calls) expect(call.verified).toBe(true)
    const records = await waitFor(
      async () => (await world.deliveries()).filter((r) => r.conversion_id === conversion.conversion_id),
      (d) => d.length >= 4,
      20_000,
      'four attempt records',
    )
    expect(records.sort((a, b) => a.attempt - b.attempt).map((r) => [r.attempt, r.state, r.status_code])).toEqual([
      [1, 'retrying', 500],
      [2, 'retrying', 500],
      [3, 'retrying', 500],
      [4, 'delivered', 200],
    ])
    expect(records[0]!.next_attempt_at).toBeGreaterThan(records[0]!.sent_at)
    expect(rx.calls).toHaveLength(4)
  })

  it('answers /readyz and /metrics, every series named clickjoin_dispatcher_*', async () => {
    const ready = await fetch(`${service.url()}/readyz`)
    expect(ready.status).toBe(200)
    expect(Object.keys(((await ready.json()) as { components: object }).components).sort()).toEqual(
      ['delivery-worker', `kafka-consumer:${world.groupId}`, 'kafka-producer', 'redis'].sort(),
    )
    const text = await (await fetch(`${service.url()}/metrics`)).text()
    const names = new Set(text.split('\n').filter((line) => line && !line.startsWith('#')).map((line) => /^[a-zA-Z_:][\w:]*/.exec(line)![0]))
    expect([...names].filter((name) => !name.startsWith('clickjoin_dispatcher_'))).toEqual([])
    // The tests above delivered and retried; the shared event consumer counted the outcomes.
    expect(text).toMatch(/^clickjoin_dispatcher_deliveries_total\{result="delivered"[^}]*\} [1-9]/m)
    expect(text).toMatch(/^clickjoin_dispatcher_deliveries_total\{result="retried"[^}]*\} [1-9]/m)
    expect(text).toMatch(/^clickjoin_dispatcher_events_consumed_total\{topic="[^"]+outcomes"[^}]*\} [1-9]/m)
  })

  it('a host that hangs does not delay deliveries to another host', async () => {
    const stuck = await receiver({ answer: () => 'hang' })
    const healthy = await receiver({})
    await world.putPublisher('pub-stuck', { postbacks: [{ url: `${stuck.origin}/x?c={click_id}` }] })
    await world.putPublisher('pub-ok', { postbacks: [{ url: `${healthy.origin}/x?c={click_id}` }] })
    const toStuck = Array.from({ length: 20 }, () => outcome('pub-stuck'))
    const toHealthy = Array.from({ length: 20 }, () => outcome('pub-ok'))
    await world.publishOutcomes(toStuck)
    await waitFor(() => stuck.hanging, (n) => n >= 2, 20_000, 'the stuck host to hold calls')
    await world.publishOutcomes(toHealthy)
    await waitFor(() => healthy.calls.length, (n) => n === 20, 20_000, 'every delivery to the healthy host')
    // Meanwhile the stuck host holds exactly its per-host limit of calls, none finished (10 s timeout).
    expect(stuck.hanging).toBe(2)
    const stuckIds = new Set(toStuck.map((o) => o.conversion_id))
    expect((await world.deliveries()).filter((r) => stuckIds.has(r.conversion_id))).toEqual([])
  })
})
