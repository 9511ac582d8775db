import { attributorKeys, SHARD_TAGS } from '../src/redis-state.ts'
import { describe, expect, it } from 'vitest'
import type { CampaignInput } from '@clickjoin/campaigns'
import { waitFor } from '@clickjoin/local-stack/testing'
import {
  attributorSuite,
  makeClick,
  makePostback,
  readOutcomes,
  REDIS_TARGETS,
} from './harness.ts'

const GRACE_MS = 8_000
const campaign: CampaignInput = { destination: 'https://shop.example/', status: 'active', payout: { type: 'cpa', amount: '3' } }

describe.each(REDIS_TARGETS)('conversions that arrive before their click (%s)', (target) => {
  const suite = attributorSuite('attr_late', target, { late: campaign }, { graceMs: GRACE_MS })

  const dueKeys = () => SHARD_TAGS.map((_, shard) => attributorKeys(suite.world.keyPrefix).due(shard))
  const parked = async () => (await Promise.all(dueKeys().map((key) => suite.redis.zcard(key)))).reduce((a, b) => a + b, 0)
  const outcomesOf = async (clickId: string) => (await readOutcomes(suite.world)).filter((m) => m.outcome.click_id === clickId)

  it('waits for a click that arrives 5 s later and attributes the conversion to it', async () => {
    const click = makeClick('late', campaign, Date.now())
    const postback = makePostback(click.click_id, click.ts + 1_000, { txn_id: 'late-1' })
    await suite.writer.postbacks([postback])
    await waitFor(parked, (n) => n === 1, 10_000, 'the conversion to be parked')
    const parkedAt = Date.now()
    expect(await outcomesOf(click.click_id)).toEqual([]) // nothing decided while it waits

    await waitFor(() => Date.now() - parkedAt, (ms) => ms >= 5_000, 6_000, '5 s to pass')
    await suite.writer.clicks([click])
    const [message] = await waitFor(() => outcomesOf(click.click_id), (m) => m.length > 0, 10_000, 'the outcome')
    expect(message!.outcome).toMatchObject({ outcome: 'attributed', reason: '', payout: '3', campaign_id: 'late', version: 1 })
    expect(await parked()).toBe(0)
  })

  it('rejects the conversion as unknown_click when the grace passes, and a click after that changes nothing', async () => {
    const click = makeClick('late', campaign, Date.now())
    const postback = makePostback(click.click_id, click.ts + 1_000, { txn_id: 'late-2' })
    const sentAt = Date.now()
    await suite.writer.postbacks([postback])
    const [rejected] = await waitFor(() => outcomesOf(click.click_id), (m) => m.length > 0, GRACE_MS + 10_000, 'unknown_click')
    expect(rejected!.outcome).toMatchObject({ outcome: 'rejected', reason: 'unknown_click', campaign_id: '', payout: '0', version: 1 })
    expect(rejected!.outcome.updated_at - sentAt).toBeGreaterThanOrEqual(GRACE_MS)

    // The click now arrives; a later conversion on it proves it was processed.
    await suite.writer.clicks([click])
    const later = makePostback(click.click_id, click.ts + 2_000, { txn_id: 'late-3' })
    await suite.writer.postbacks([later])
    const messages = await waitFor(() => outcomesOf(click.click_id), (m) => m.length >= 2, 10_000, 'the later conversion')
    expect(messages.map((m) => [m.outcome.txn_id, m.outcome.version, m.outcome.outcome])).toEqual([
      ['late-2', 1, 'rejected'],
      ['late-3', 1, 'attributed'],
    ])
  })
})
