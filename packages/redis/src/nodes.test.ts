import { describe, expect, it } from 'vitest'
import { redisTargetFromEnv } from './client.ts'
import { formatClusterNodes, parseClusterNodes } from './nodes.ts'

describe('parseClusterNodes', () => {
  it('reads host:port lists, IPv6 in brackets, spaces and empty entries ignored', () => {
    const nodes = parseClusterNodes(' 10.0.0.5:7000, redis-1.internal:7001,,[::1]:7002 ')
    expect(nodes).toEqual([
      { host: '10.0.0.5', port: 7000 },
      { host: 'redis-1.internal', port: 7001 },
      { host: '::1', port: 7002 },
    ])
    expect(formatClusterNodes(nodes)).toBe('10.0.0.5:7000,redis-1.internal:7001,[::1]:7002')
  })

  it.each(['', ',', 'localhost', 'localhost:0', 'localhost:70000', 'redis://h:1', 'h:1:2', '::1:7000'])(
    'refuses %j with the variable named',
    (value) => {
      expect(() => parseClusterNodes(value)).toThrow(/^REDIS_CLUSTER_NODES: /)
    },
  )
})

describe('redisTargetFromEnv', () => {
  it('takes REDIS_CLUSTER_NODES and REDIS_URL, ignoring blank values', () => {
    expect(redisTargetFromEnv({ REDIS_URL: 'redis://h:6379', REDIS_CLUSTER_NODES: ' ' })).toEqual({ url: 'redis://h:6379' })
    expect(redisTargetFromEnv({ REDIS_CLUSTER_NODES: 'a:1,b:2' })).toEqual({
      clusterNodes: [
        { host: 'a', port: 1 },
        { host: 'b', port: 2 },
      ],
    })
    expect(() => redisTargetFromEnv({ REDIS_CLUSTER_NODES: 'a' })).toThrow(/REDIS_CLUSTER_NODES/)
  })
})
