import { randomBytes } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquireTestRedisCluster, startRedisServer, type RedisServer } from '@clickjoin/local-stack'
import { tempDir, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import {
  createRedisClient,
  duplicateClient,
  hashTag,
  keySlot,
  primaries,
  scanKeys,
  usedMemory,
  waitReady,
  type RedisClient,
} from './index.ts'

describe('createRedisClient on a 3-primary Redis Cluster', () => {
  let cluster: { nodes: string[]; release(): Promise<void> }
  const clients: RedisClient[] = []
  function client(options: Parameters<typeof createRedisClient>[0] = {}): RedisClient {
    const c = createRedisClient({ clusterNodes: cluster.nodes.join(','), ...options })
    clients.push(c)
    return c
  }
  beforeAll(async () => {
    cluster = await acquireTestRedisCluster(await tempDir('redis-cluster'))
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await cluster?.release()
  })

  it('is an ioredis Cluster over three durable primaries covering every slot', async () => {
    const redis = client()
    expect(redis).toBeInstanceOf(Cluster)
    await waitReady(redis)
    const nodes = primaries(redis)
    expect(nodes).toHaveLength(3)
    for (const node of nodes) {
      expect(await node.config('GET', 'appendonly')).toEqual(['appendonly', 'yes'])
      expect(await node.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always'])
      expect(await node.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction'])
      expect(String(await node.call('CLUSTER', 'INFO'))).toMatch(/cluster_state:ok/)
    }
    const ranges = (await redis.cluster('SLOTS')) as Array<[number, number, ...unknown[]]>
    expect(ranges.reduce((n, [from, to]) => n + to - from + 1, 0)).toBe(16_384)
  })

  it('computes the same slot as the server, hash tags included', async () => {
    const redis = client()
    await waitReady(redis)
    const keys = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 0 ? `cj:${randomBytes(6).toString('hex')}:${hashTag(randomBytes(4).toString('base64url'))}` : randomBytes(1 + (i % 40)).toString('latin1'),
    )
    for (const key of keys) expect(keySlot(key), key).toBe(await redis.cluster('KEYSLOT', key))
  })

  it('spreads keys over all primaries and follows redirections', async () => {
    const redis = client({ enableAutoPipelining: true })
    const prefix = uniqueName('spread')
    const keys = Array.from({ length: 200 }, (_, i) => `${prefix}:${i}`)
    await Promise.all(keys.map((k) => redis.set(k, k, 'EX', 600)))
    expect(await Promise.all(keys.map((k) => redis.get(k)))).toEqual(keys)
    for (const node of primaries(redis)) expect((await node.keys(`${prefix}:*`)).length).toBeGreaterThan(20)
    expect((await scanKeys(redis, `${prefix}:*`)).sort()).toEqual([...keys].sort())
    expect(await usedMemory(redis)).toBeGreaterThan(0)
  })

  it('runs one MULTI or script over keys sharing a hash tag; the server refuses keys of several slots', async () => {
    const redis = client({ keyPrefix: `${uniqueName('tx')}:` })
    const tag = hashTag('conversion-42')
    const results = await redis.multi().set(`click:${tag}`, 'c').incr(`count:${tag}`).exec()
    expect(results).toEqual([
      [null, 'OK'],
      [null, 1],
    ])
    const script = 'redis.call("SET", KEYS[2], redis.call("GET", KEYS[1]) .. ARGV[1]) return redis.call("GET", KEYS[2])'
    expect(await redis.eval(script, 2, `click:${tag}`, `copy:${tag}`, '!')).toBe('c!')
    await expect(redis.eval(script, 2, 'click:{a}', 'copy:{b}', '!')).rejects.toThrow(/CROSSSLOT|same slot/)
  })

  it('delivers a PUBLISH made through any node to a duplicated subscriber', async () => {
    const redis = client()
    const subscriber = duplicateClient(redis)
    clients.push(subscriber)
    await waitReady(subscriber)
    const channel = uniqueName('changes')
    const received: string[] = []
    subscriber.on('message', (ch: string, message: string) => ch === channel && received.push(message))
    await subscriber.subscribe(channel)
    // Publish from each primary directly: the cluster bus forwards to the subscribed node.
    for (const [i, node] of primaries(redis).entries()) await node.publish(channel, `from-${i}`)
    await waitFor(() => [...received].sort(), (r) => r.length === 3, 5_000, 'three messages')
    expect([...received].sort()).toEqual(['from-0', 'from-1', 'from-2'])
  })

  it('waitReady fails with a clear message when no node answers', async () => {
    const dead = createRedisClient({ clusterNodes: '127.0.0.1:1', lazyConnect: true })
    clients.push(dead)
    await expect(waitReady(dead, 1_500)).rejects.toThrow(/Redis (not ready within 1500 ms|client closed before it was ready)/)
  })
})

describe('createRedisClient on one Redis', () => {
  // A server of its own: in a cluster run REDIS_URL names a cluster node.
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedisServer({ dataDir: await tempDir('redis-single'), port: 0 })
  })
  afterAll(() => server?.stop())

  it('is a plain ioredis Redis on the URL, with the key prefix applied', async () => {
    const redis = createRedisClient({ url: server.url, keyPrefix: 'single:', lazyConnect: true })
    const raw = new Redis(server.url)
    try {
      expect(redis).toBeInstanceOf(Redis)
      await waitReady(redis)
      await redis.set('k', 'v', 'EX', 60)
      expect(await raw.get('single:k')).toBe('v')
      expect(primaries(redis)).toEqual([redis])
    } finally {
      redis.disconnect()
      raw.disconnect()
    }
  })

  it('refuses to guess when neither a URL nor cluster nodes are given', () => {
    expect(() => createRedisClient({})).toThrow(/REDIS_URL .*REDIS_CLUSTER_NODES/)
  })
})
