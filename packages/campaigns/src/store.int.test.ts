import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { testStackEnv, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { campaignFromInput, partnerFromInput } from './schema.ts'
import { createConfigStore, type ConfigStore } from './store.ts'

describe('config store', () => {
  const connections: Redis[] = []
  const stores: ConfigStore[] = []
  const prefix = `${uniqueName('cfg')}:`
  function replica(): ConfigStore {
    const redis = new Redis(testStackEnv().redisUrl)
    const subscriber = new Redis(testStackEnv().redisUrl)
    connections.push(redis, subscriber)
    const store = createConfigStore({ redis, subscriber, keyPrefix: prefix })
    stores.push(store)
    return store
  }
  afterAll(async () => {
    for (const s of stores) await s.stop()
    for (const c of connections) c.disconnect()
  })

  it('a change written on one replica is served from memory by another within 1 s', async () => {
    const a = replica()
    const b = replica()
    await a.start()
    await b.start()
    expect(b.campaign('summer')).toBeUndefined()

    await a.putCampaign(campaignFromInput('summer', { destination: 'https://shop.example/land?c={click_id}', status: 'active' }))
    expect(a.campaign('summer')?.window_seconds).toBe(2_592_000) // read-your-writes, defaults applied
    await waitFor(() => b.campaign('summer')?.status, (s) => s === 'active', 1_000, 'replica b to see the campaign')

    await a.putCampaign(campaignFromInput('summer', { destination: 'https://shop.example/land', status: 'paused' }))
    await waitFor(() => b.campaign('summer')?.status, (s) => s === 'paused', 1_000, 'replica b to see the pause')

    await b.putPartner(partnerFromInput('acme', { secret: 'a-long-partner-secret' }))
    await waitFor(() => a.partner('acme')?.secret, (s) => s === 'a-long-partner-secret', 1_000, 'replica a to see the partner')

    // A replica started later loads everything at start.
    const c = replica()
    await c.start()
    expect(c.campaigns().map((x) => x.id)).toEqual(['summer'])
    expect(c.partner('acme')?.ip_allowlist).toEqual([])
  })
})
