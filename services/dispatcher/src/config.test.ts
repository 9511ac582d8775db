import { describe, expect, it } from 'vitest'
import { ConfigError } from '@clickjoin/config'
import { loadDispatcherConfig } from './config.ts'

describe('loadDispatcherConfig', () => {
  it('has the defaults of SPEC §5b and §8', () => {
    const config = loadDispatcherConfig({})
    expect(config.port).toBe(8083)
    expect(config.timeoutMs).toBe(10_000)
    expect(config.backoff.retryForMs).toBe(72 * 3_600_000)
    expect(config.allowedNetworks.text).toEqual([])
    expect(config.leaseMs).toBeGreaterThan(config.timeoutMs)
    expect(config.adminToken).toBe('dev-admin-token')
    expect(config.warnings.join()).toMatch(/ADMIN_TOKEN/)
  })

  it('reads PORT, hours, CIDRs and the shared Kafka and Redis fields', () => {
    const config = loadDispatcherConfig({
      PORT: '9000',
      DISPATCH_RETRY_HOURS: '1.5',
      DISPATCH_ALLOW_NETWORKS: '127.0.0.1/32, fd00::/8',
      KAFKA_REPLICATION_FACTOR: '3',
      REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2:7000',
    })
    expect(config.port).toBe(9000)
    expect(config.backoff.retryForMs).toBe(5_400_000)
    expect(config.allowedNetworks.text).toEqual(['127.0.0.1/32', 'fd00::/8'])
    expect(config.replicationFactor).toBe(3)
    expect(config.redisClusterNodes).toEqual(['10.0.0.1:7000', '10.0.0.2:7000'])
  })

  it('names every bad variable', () => {
    const error = (() => {
      try {
        loadDispatcherConfig({ DISPATCH_ALLOW_NETWORKS: '10.0.0.0/8,bogus', DISPATCH_RETRY_HOURS: '-1', DISPATCH_TIMEOUT_MS: 'soon' })
      } catch (err) {
        return err
      }
    })()
    expect(error).toBeInstanceOf(ConfigError)
    const message = (error as ConfigError).message
    expect(message).toMatch(/DISPATCH_ALLOW_NETWORKS: "bogus" is not a CIDR range/)
    expect(message).toMatch(/DISPATCH_RETRY_HOURS/)
    expect(message).toMatch(/DISPATCH_TIMEOUT_MS/)
    expect(() => loadDispatcherConfig({ KAFKA_TOPIC_PREFIX: 'bad prefix!' })).toThrow(/KAFKA_TOPIC_PREFIX/)
    const both = (() => {
      try {
        loadDispatcherConfig({ NODE_ENV: 'production', DISPATCH_LEASE_MS: '5s' })
      } catch (err) {
        return String(err)
      }
    })()
    expect(both).toMatch(/ADMIN_TOKEN: is required in production/)
    expect(both).toMatch(/DISPATCH_LEASE_MS: must be longer/)
  })
})
