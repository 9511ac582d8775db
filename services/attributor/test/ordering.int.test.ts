import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CampaignInput } from '@clickjoin/campaigns'
import { conversionPartitionKey } from '@clickjoin/contracts'
import { waitFor } from '@clickjoin/local-stack/testing'
import type { RedisClient } from '@clickjoin/redis'
import {
  assertRepeatsIdentical,
  attributorSuite,
  clicksInRedis,
  connectRedis,
  createEventWriter,
  createWorld,
  latestByConversion,
  makeClick,
  makePostback,
  putCampaigns,
  readOutcomes,
  REDIS_TARGETS,
  startAttributor,
  type InProcessAttributor,
  type TestWorld,
} from './harness.ts'

const PAIRS = 1_000
const campaign: CampaignInput = { destination: 'https://shop.example/', status: 'active', payout: { type: 'cpa', amount: '4' } }

describe.each(REDIS_TARGETS)('postbacks of one conversion are decided in the order ingest acknowledged them (%s)', (target) => {
  // A long grace: the second case sends the missing clicks only after every postback was acknowledged.
  const suite = attributorSuite('attr_order', target, { order: campaign }, { graceMs: 60_000 })

  it(`a charge-back sent with another click ID right after its approval ends rejected (${PAIRS} pairs)`, async () => {
    const now = Date.now()
    const pairs = Array.from({ length: PAIRS }, (_, i) => {
      const approvedClick = makeClick('order', campaign, now - 60_000 - i)
      const otherClick = makeClick('order', campaign, now - 30_000 - i)
      const txn = `order-${i}`
      return {
        clicks: [approvedClick, otherClick],
        approved: makePostback(approvedClick.click_id, now - 10_000, { txn_id: txn, revenue: '20' }),
        chargeBack: makePostback(otherClick.click_id, now - 5_000, { txn_id: txn, status: 'rejected' }),
      }
    })
    await suite.writer.clicks(pairs.flatMap((p) => p.clicks))

    // Under load: every pair at once, each charge-back sent as soon as its approval was acknowledged.
    await Promise.all(
      pairs.map(async (p) => {
        await suite.writer.postbacks([p.approved])
        await suite.writer.postbacks([p.chargeBack])
      }),
    )

    // Two distinct (conversion, version) outcomes per pair: a redelivered or re-drained outcome is
    // a repeat, and counting messages would stop the wait before every charge-back was decided.
    const messages = await waitFor(
      () => readOutcomes(suite.world),
      (m) => assertRepeatsIdentical(m).distinct >= 2 * PAIRS,
      120_000,
      'two versions of every conversion',
    )
    assertRepeatsIdentical(messages)
    const latest = latestByConversion(messages)
    const wrong = pairs
      .map((p) => latest.get(`t:${p.approved.partner_id}:${p.approved.txn_id}`))
      .filter((o) => !(o && o.version === 2 && o.status === 'rejected' && o.payout === '0' && o.outcome === 'attributed'))
    expect({ wrong: wrong.length, first: wrong.slice(0, 3) }).toEqual({ wrong: 0, first: [] })
    // Attribution of the first decision: the click the approval named.
    for (const p of pairs.slice(0, 50)) {
      expect(latest.get(`t:${p.approved.partner_id}:${p.approved.txn_id}`)?.click_id).toBe(p.approved.click_id)
    }
    // One key per conversion: both postbacks of a pair share it.
    expect(pairs.every((p) => conversionPartitionKey(p.approved) === conversionPartitionKey(p.chargeBack))).toBe(true)
  })

  it('a charge-back naming a present click waits behind its approval parked for a click not yet arrived', async () => {
    const now = Date.now()
    const pairs = Array.from({ length: 100 }, (_, i) => {
      const lateClick = makeClick('order', campaign, now - 60_000 - i)
      const presentClick = makeClick('order', campaign, now - 30_000 - i)
      const txn = `parked-${i}`
      return {
        lateClick,
        presentClick,
        approved: makePostback(lateClick.click_id, now - 10_000, { txn_id: txn, revenue: '20' }),
        chargeBack: makePostback(presentClick.click_id, now - 5_000, { txn_id: txn, status: 'rejected' }),
      }
    })
    await suite.writer.clicks(pairs.map((p) => p.presentClick))
    await Promise.all(
      pairs.map(async (p) => {
        await suite.writer.postbacks([p.approved])
        await suite.writer.postbacks([p.chargeBack])
      }),
    )
    // Both wait: the approval for its click, the charge-back behind the approval.
    const id = (p: (typeof pairs)[number]) => `t:${p.approved.partner_id}:${p.approved.txn_id}`
    await waitFor(() => suite.attributor.attributor.health(), (h) => h.ok, 10_000, 'the attributor')
    await suite.writer.clicks(pairs.map((p) => p.lateClick))
    const messages = await waitFor(
      () => readOutcomes(suite.world),
      (m) => pairs.every((p) => m.some((o) => o.outcome.conversion_id === id(p) && o.outcome.version === 2)),
      60_000,
      'two versions of every parked conversion',
    )
    const latest = latestByConversion(messages)
    const wrong = pairs
      .map((p) => ({ p, o: latest.get(id(p)) }))
      .filter(({ p, o }) => !(o && o.version === 2 && o.status === 'rejected' && o.payout === '0' && o.outcome === 'attributed' && o.click_id === p.approved.click_id))
      .map(({ o }) => o)
    expect({ wrong: wrong.length, first: wrong.slice(0, 3) }).toEqual({ wrong: 0, first: [] })
  })
})

describe.each(REDIS_TARGETS)('a batch larger than a round is decided in rounds, each reading after the write before it (%s)', (target) => {
  const CONVERSIONS = 3_000
  let world: TestWorld
  let writer: Awaited<ReturnType<typeof createEventWriter>>
  let redis: RedisClient
  let attributor: InProcessAttributor | undefined
  beforeAll(async () => {
    world = await createWorld('attr_rounds', target)
    await putCampaigns(world, { order: campaign })
    writer = await createEventWriter(world)
    redis = connectRedis(world.redis)
  })
  afterAll(async () => {
    await attributor?.stop()
    await writer.stop()
    redis.disconnect()
    await world.stop()
  })

  it(`${CONVERSIONS} approvals then their charge-backs, all in the topic before the attributor starts: every one ends rejected, none decided twice`, async () => {
    const now = Date.now()
    const clicks = Array.from({ length: CONVERSIONS }, (_, i) => makeClick('order', campaign, now - 60_000 - i))
    // The clicks first, so every postback finds its click (none parked): only the rounds are tested.
    const recorder = await startAttributor(world)
    await writer.clicks(clicks)
    await waitFor(() => clicksInRedis(redis, world, clicks.map((c) => c.click_id)), (n) => n === CONVERSIONS, 60_000, 'every click in Redis')
    await recorder.stop()

    // ~2,000 postbacks per partition, fetched together: a round of approvals, then a round of
    // their charge-backs, whose read is sent behind the approvals' write.
    await writer.postbacks(clicks.map((c, i) => makePostback(c.click_id, now - 10_000, { txn_id: `round-${i}`, revenue: '20' })))
    await writer.postbacks(clicks.map((c, i) => makePostback(c.click_id, now - 5_000, { txn_id: `round-${i}`, status: 'rejected' })))
    attributor = await startAttributor(world)
    const messages = await waitFor(
      () => readOutcomes(world),
      (m) => assertRepeatsIdentical(m).distinct >= 2 * CONVERSIONS,
      120_000,
      'two versions of every conversion',
    )
    const latest = latestByConversion(messages)
    const wrong = clicks
      .map((c, i) => latest.get(`t:acme:round-${i}`))
      .filter((o) => !(o && o.version === 2 && o.status === 'rejected' && o.payout === '0' && o.outcome === 'attributed'))
    expect({ wrong: wrong.length, first: wrong.slice(0, 3) }).toEqual({ wrong: 0, first: [] })
    // A charge-back whose read had not seen its approval would have lost the compare-and-set and
    // been read and decided again on its own: thousands of reads instead of a few per batch.
    const reads = (await attributor.registry.getSingleMetric('clickjoin_attributor_redis_seconds')!.get()).values.find(
      (v) => (v as { metricName?: string }).metricName === 'clickjoin_attributor_redis_seconds_count' && v.labels['op'] === 'read_postbacks',
    )?.value
    expect(reads).toBeLessThan(100)
  })
})
