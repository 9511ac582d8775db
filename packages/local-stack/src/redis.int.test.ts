import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedisServer, type RedisServer } from './redis.ts'
import { tempDir, testStackEnv, uniqueName } from './testing.ts'

describe('the stack Redis', () => {
  let redis: Redis | Cluster
  beforeAll(() => {
    // CLICKJOIN_TEST_REDIS=cluster: the run's Redis is a cluster (REDIS_URL is one node of it).
    const nodes = process.env['REDIS_CLUSTER_NODES']?.split(',').filter(Boolean)
    redis = nodes
      ? new Cluster(nodes.map((n) => ({ host: n.slice(0, n.lastIndexOf(':')), port: Number(n.slice(n.lastIndexOf(':') + 1)) })))
      : new Redis(testStackEnv().redisUrl)
  })
  afterAll(() => redis.disconnect())

  it('stores values with a TTL and never evicts', async () => {
    const key = `${uniqueName('t')}:click`
    await redis.set(key, 'state', 'EX', 120)
    expect(await redis.get(key)).toBe('state')
    const ttl = await redis.ttl(key)
    expect(ttl).toBeGreaterThan(110)
    expect(ttl).toBeLessThanOrEqual(120)
    await redis.pexpire(key, 1)
    await new Promise((r) => setTimeout(r, 20))
    expect(await redis.get(key)).toBeNull()
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction'])
  })
})

describe('a local redis-server', () => {
  let server: RedisServer
  let dataDir: string
  beforeAll(async () => {
    dataDir = await tempDir('redis-aof')
    server = await startRedisServer({ dataDir, port: 0 })
  })
  afterAll(() => server.stop())

  it('keeps acknowledged writes across a crash (kill -9) through its append-only file', async () => {
    const client = new Redis(server.url)
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes'])
    const keys = Array.from({ length: 500 }, (_, i) => `k${i}`)
    await Promise.all(keys.map((k) => client.set(k, k, 'EX', 3600)))
    client.disconnect()
    await server.process.kill()

    server = await startRedisServer({ dataDir, port: server.port })
    const after = new Redis(server.url)
    expect(await after.dbsize()).toBe(500)
    expect(await after.ttl('k499')).toBeGreaterThan(3500)
    after.disconnect()
  })
})
