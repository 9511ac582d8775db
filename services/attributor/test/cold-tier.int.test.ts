import { createColdTier, createColdTierClient, type ColdTierQuery } from '../src/cold-tier.ts'
import { attributorKeys } from '../src/redis-state.ts'
import { scanKeyBuffers } from '@clickjoin/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CampaignInput } from '@clickjoin/campaigns'
import { conversionPartitionKey, type ClickV1, type OutcomeV1, type PostbackV1 } from '@clickjoin/contracts'
import { waitFor } from '@clickjoin/local-stack/testing'
import { countOf, readerFor } from '../../sink/test/harness.ts'
import {
  attributorSuite,
  clicksInRedis,
  makeClick,
  makePostback,
  readOutcomes,
  REDIS_TARGETS,
} from './harness.ts'

const HOT_SECONDS = 5
const campaigns: Record<string, CampaignInput> = {
  month: { destination: 'https://shop.example/', status: 'active', window_seconds: 2_592_000, payout: { type: 'cpa', amount: '3' } },
  short: { destination: 'https://shop.example/', status: 'active', window_seconds: 8, payout: { type: 'cpa', amount: '3' } },
}

/** The fields a conversion takes from its click and campaign. */
const joined = (o: OutcomeV1) => ({
  outcome: o.outcome,
  reason: o.reason,
  campaign_id: o.campaign_id,
  publisher_id: o.publisher_id,
  subs: [o.sub1, o.sub2, o.sub3, o.sub4, o.sub5],
  click_ts: o.click_ts,
  payout: o.payout,
})

describe.each(REDIS_TARGETS)(`with ATTRIBUTOR_HOT_SECONDS=${HOT_SECONDS}: clicks and conversions older than that come from ClickHouse (%s)`, (target) => {
  const suite = attributorSuite('attr_cold', target, campaigns, { graceMs: 3_000, hotSeconds: HOT_SECONDS, ttlMarginSeconds: 1 })
  let clickhouse: ReturnType<typeof readerFor>
  beforeAll(() => {
    clickhouse = readerFor(suite.world.sink.config)
  })
  afterAll(async () => {
    await clickhouse?.close()
  })

  const outcomesOf = async (txn: string) =>
    (await readOutcomes(suite.world)).map((m) => m.outcome).filter((o) => o.txn_id === txn).sort((a, b) => a.version - b.version)
  const oneOutcome = (txn: string, versions = 1) =>
    waitFor(() => outcomesOf(txn), (o) => o.length >= versions, 20_000, `outcome of ${txn}`)

  /**
   * What Redis still holds of the click: its field in the hot-click bucket, and every key whose
   * name contains the click ID (as text or as its 24 bytes: parked postbacks, conversions).
   */
  async function keysNaming(click: ClickV1): Promise<string[]> {
    const held = (await clicksInRedis(suite.redis, suite.world, [click.click_id])) > 0 ? ['<hot click bucket field>'] : []
    const idBytes = Buffer.from(click.click_id, 'base64url')
    const names = await scanKeyBuffers(suite.redis, `${suite.world.keyPrefix}*`)
    return [...held, ...names.filter((n) => n.includes(click.click_id) || n.includes(idBytes)).map((n) => n.toString('latin1'))]
  }

  /** The hot period of `click` is over: Redis names it nowhere, and ClickHouse has it. */
  async function waitUntilCold(click: ClickV1): Promise<void> {
    await waitFor(() => keysNaming(click), (keys) => keys.length === 0, (HOT_SECONDS + 10) * 1000, `Redis to forget ${click.click_id}`)
    await waitFor(
      () => countOf(clickhouse, `SELECT count() AS n FROM ${suite.world.database}.click_lookup WHERE click_id = '${click.click_id}'`),
      (n) => n === 1,
      10_000,
      'the click in ClickHouse',
    )
  }

  /** How many cold-tier queries of this kind the attributor made. */
  async function coldLookups(op: string): Promise<number> {
    const metric = await suite.attributor.registry.getSingleMetric('clickjoin_attributor_clickhouse_seconds')!.get()
    return metric.values.find((v) => (v as { metricName?: string }).metricName === 'clickjoin_attributor_clickhouse_seconds_count' && v.labels['op'] === op)?.value ?? 0
  }

  const send = (postbacks: PostbackV1[]) => suite.writer.postbacks(postbacks)

  it('attributes a conversion 15 s after its click with the same row as one at 1 s', async () => {
    const click = makeClick('month', campaigns['month']!, Date.now(), { publisher_id: 'pub-7', sub1: 's1', sub3: 's3', sub5: 's5' })
    await suite.writer.clicks([click])
    await send([makePostback(click.click_id, click.ts + 1_000, { txn_id: 'early' })])
    const [early] = await oneOutcome('early')

    await waitUntilCold(click)
    await waitFor(() => Date.now(), (now) => now >= click.ts + 15_000, 20_000, '15 s after the click')
    await send([makePostback(click.click_id, click.ts + 15_000, { txn_id: 'late' })])
    const [late] = await oneOutcome('late')

    expect(joined(early!)).toEqual({ outcome: 'attributed', reason: '', campaign_id: 'month', publisher_id: 'pub-7', subs: ['s1', '', 's3', '', 's5'], click_ts: click.ts, payout: '3' })
    expect(joined(late!)).toEqual(joined(early!))
    expect(late!.ctit_ms).toBe(15_000)
    expect(await keysNaming(click)).toEqual([]) // the cold lookup put nothing back into Redis
    expect(await coldLookups('cold_clicks')).toBeGreaterThan(0)
  })

  it("judges `expired` against the click's own 8 s window, not the other campaign's 30 days", async () => {
    const click = makeClick('short', campaigns['short']!, Date.now())
    await suite.writer.clicks([click])
    await waitUntilCold(click)
    await waitFor(() => Date.now(), (now) => now >= click.ts + 12_000, 20_000, '12 s after the click')
    await send([
      makePostback(click.click_id, click.ts + 12_000, { txn_id: 'short-late' }),
      makePostback(click.click_id, click.ts + 7_000, { txn_id: 'short-in' }),
    ])
    const [late] = await oneOutcome('short-late')
    const [inside] = await oneOutcome('short-in')
    expect(joined(late!)).toMatchObject({ outcome: 'rejected', reason: 'expired', campaign_id: 'short', payout: '0' })
    expect(joined(inside!)).toMatchObject({ outcome: 'attributed', reason: '', campaign_id: 'short', payout: '3' })
  })

  it('decides a duplicate and a charge-back of a conversion decided 15 s earlier exactly as when it was hot', async () => {
    const click = makeClick('month', campaigns['month']!, Date.now())
    await suite.writer.clicks([click])
    const approved = (txn: string) => makePostback(click.click_id, click.ts + 1_000, { txn_id: txn, revenue: '10' })
    const chargeBack = (txn: string) => makePostback(click.click_id, click.ts + 1_000, { txn_id: txn, status: 'rejected' })

    // Hot: the whole life of the conversion while Redis still has it.
    await send([approved('hot')])
    await oneOutcome('hot')
    await send([approved('hot'), chargeBack('hot')])
    // Cold: decided, then the duplicate and the charge-back 15 s later.
    await send([approved('cold')])
    const [first] = await oneOutcome('cold')
    await waitUntilCold(click)
    await waitFor(
      () => countOf(clickhouse, `SELECT count() AS n FROM ${suite.world.database}.conversions WHERE txn_id = 'cold'`),
      (n) => n === 1,
      10_000,
      'the conversion in ClickHouse',
    )
    await waitFor(() => Date.now(), (now) => now >= first!.updated_at + 15_000, 20_000, '15 s after the decision')
    expect(await suite.redis.exists(attributorKeys(suite.world.keyPrefix).conversion(conversionPartitionKey({ ...first!, channel: 'postback' }), first!.conversion_id))).toBe(0)
    await send([approved('cold'), chargeBack('cold')])

    const hot = await oneOutcome('hot', 2)
    const cold = await oneOutcome('cold', 2)
    const shape = (o: OutcomeV1) => ({ ...joined(o), version: o.version, status: o.status, revenue: o.revenue })
    expect(hot.map(shape)).toEqual([
      { ...joined(hot[0]!), version: 1, status: 'approved', revenue: '10', outcome: 'attributed', payout: '3' },
      { ...joined(hot[0]!), version: 2, status: 'rejected', revenue: '10', outcome: 'attributed', payout: '0' },
    ])
    expect(cold.map(shape)).toEqual(hot.map(shape))
    // The duplicate published nothing: still exactly two versions once the charge-back is in.
    expect((await outcomesOf('cold')).map((o) => o.version)).toEqual([1, 2])
    expect(cold[1]!.conversion_id).toBe(cold[0]!.conversion_id)
    expect(await coldLookups('cold_conversions')).toBeGreaterThan(0)
  })

  it('answers concurrent conversion lookups from shared queries, each call with its own conversions', async () => {
    const click = makeClick('month', campaigns['month']!, Date.now())
    await suite.writer.clicks([click])
    const txns = ['shared-1', 'shared-2', 'shared-3', 'shared-4']
    await send(txns.map((txn) => makePostback(click.click_id, click.ts + 1_000, { txn_id: txn })))
    const decided = await Promise.all(txns.map(async (txn) => (await oneOutcome(txn))[0]!))
    const ids = decided.map((o) => o.conversion_id)
    await waitFor(
      () => countOf(clickhouse, `SELECT count() AS n FROM ${suite.world.database}.conversions WHERE txn_id IN ('${txns.join("','")}')`),
      (n) => n === txns.length,
      10_000,
      'the conversions in ClickHouse',
    )

    const queries: ColdTierQuery[] = []
    const client = createColdTierClient(suite.world.clickhouseUrl)
    try {
      const cold = createColdTier(client, suite.world.database, { onQuery: (query) => queries.push(query) })
      const asked = [[ids[0]!, 'missing-0'], [ids[1]!, ids[2]!], [ids[2]!, 'missing-1'], [ids[3]!], ['missing-2']]
      const answers = await Promise.all(asked.map((conversionIds) => cold.conversions(conversionIds)))

      const asStored = (o: OutcomeV1) => ({ conversion_id: o.conversion_id, txn_id: o.txn_id, version: o.version, status: o.status, outcome: o.outcome, click_id: o.click_id })
      const expected = asked.map((conversionIds) => conversionIds.flatMap((id) => decided.filter((o) => o.conversion_id === id).map(asStored)))
      expect(answers.map((found) => [...found.values()].map((c) => asStored(c.outcome)))).toEqual(expected)
      // The first call went out alone (2 queries: which exist, then their rows); the four made
      // while it was in flight went out together in the next 2.
      expect(queries).toEqual(['conversions_exist', 'conversions_final', 'conversions_exist', 'conversions_final'])
    } finally {
      await client.close()
    }
  })
})
