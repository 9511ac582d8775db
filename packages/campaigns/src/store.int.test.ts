import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquireTestRedisCluster } from '@clickjoin/local-stack'
import { tempDir, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { createRedisClient, duplicateClient, primaries, redisTargetFromEnv, type RedisClientOptions, type RedisClient } from '@clickjoin/redis'
import { campaignFromInput, partnerFromInput } from './schema.ts'
import { configKeys, createConfigStore, type ConfigStore } from './store.ts'

// The same scenario on the Redis of the run (one server, or a cluster with
// CLICKJOIN_TEST_REDIS=cluster) and on a 3-primary Redis Cluster in every run.
const targets: Array<[string, () => Promise<{ target: RedisClientOptions; release(): Promise<void> }>]> = [
  ['the stack Redis', async () => ({ target: redisTargetFromEnv(), release: async () => undefined })],
  [
    'a 3-primary Redis Cluster',
    async () => {
      const cluster = await acquireTestRedisCluster(await tempDir('cfg-cluster'))
      return { target: { clusterNodes: cluster.nodes.join(',') }, release: cluster.release }
    },
  ],
]

describe.each(targets)('config store on %s', (_name, acquire) => {
  const connections: RedisClient[] = []
  const stores: ConfigStore[] = []
  const prefix = `${uniqueName('cfg')}:`
  let target: RedisClientOptions
  let release = async () => undefined as void
  function replica(): ConfigStore {
    const redis = createRedisClient(target)
    const subscriber = duplicateClient(redis)
    connections.push(redis, subscriber)
    const store = createConfigStore({ redis, subscriber, keyPrefix: prefix })
    stores.push(store)
    return store
  }
  beforeAll(async () => {
    ;({ target, release } = await acquire())
  })
  afterAll(async () => {
    for (const s of stores) await s.stop()
    for (const c of connections) c.disconnect()
    await release()
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
    expect(a.health()).toEqual({ ok: true, detail: '1 campaigns, 1 partners' })
  })

  it('stores each record in the documented hashes, wherever their slots live', async () => {
    const a = replica()
    await a.start()
    await a.putCampaign(campaignFromInput('autumn', { destination: 'https://shop.example/a', status: 'active' }))
    const redis = connections[connections.length - 2]
    if (!redis) throw new Error('no connection')
    const keys = configKeys(prefix)
    expect(JSON.parse((await redis.hget(keys.campaigns, 'autumn')) ?? '{}')).toMatchObject({ id: 'autumn', status: 'active' })
    // Exactly one primary holds the campaigns hash (one per server run, one of three in a cluster).
    const holders = await Promise.all(primaries(redis).map((node) => node.exists(keys.campaigns).catch(() => 0)))
    expect(holders.filter((n) => n === 1)).toHaveLength(1)
  })
})
