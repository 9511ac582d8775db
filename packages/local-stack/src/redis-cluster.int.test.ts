import { Cluster } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { processAlive } from '@clickjoin/service-runtime'
import { startRedisCluster } from './redis-cluster.ts'
import { tempDir } from './testing.ts'

describe('a local Redis Cluster', () => {
  it('stops cleanly and comes back formed, with its data, over the same directory and ports', async () => {
    const dataDir = await tempDir('redis-cluster-restart')
    const first = await startRedisCluster({ dataDir })
    expect(first.nodes).toHaveLength(3)
    const ports = first.nodes.map((n) => Number(n.split(':')[1]))
    const keys = Array.from({ length: 100 }, (_, i) => `restart:${i}`)
    let client = new Cluster(first.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })))
    try {
      await Promise.all(keys.map((k) => client.set(k, k)))
    } finally {
      client.disconnect()
    }
    const pids = first.processes.map((p) => p.pid)
    await first.stop()
    expect(pids.filter(processAlive)).toEqual([])

    const second = await startRedisCluster({ dataDir, ports })
    try {
      client = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })))
      expect(await Promise.all(keys.map((k) => client.get(k)))).toEqual(keys)
    } finally {
      client.disconnect()
      await second.stop()
    }
  })

  it('refuses fewer than 3 primaries', async () => {
    await expect(startRedisCluster({ dataDir: await tempDir('redis-cluster-small'), primaries: 2 })).rejects.toThrow(/at least 3 primaries/)
  })
})
