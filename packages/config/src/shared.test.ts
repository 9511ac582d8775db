import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ConfigError, parseEnv } from './parse-env.ts'
import { clickIdFields, clickIdSettings, kafkaFields, kafkaSettings, redisFields, redisSettings, serviceFields } from './shared.ts'

const Env = z.object({ ...serviceFields, ...kafkaFields, ...redisFields, ...clickIdFields })

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseEnv(Env, env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.variable)
    throw err
  }
  return []
}

describe('shared configuration fields', () => {
  it('defaults for a local run', () => {
    const e = parseEnv(Env, {})
    expect(kafkaSettings(e)).toEqual({ kafkaBrokers: ['127.0.0.1:9092'], topicPrefix: '', topicPartitions: 6, replicationFactor: 1 })
    expect(redisSettings(e)).toEqual({ redisUrl: 'redis://127.0.0.1:6379', redisClusterNodes: undefined, redisKeyPrefix: 'cj:' })
  })

  it('refuses a topic prefix Kafka would refuse, naming the variable', () => {
    expect(problemsOf({ KAFKA_TOPIC_PREFIX: 'bad prefix!' })).toEqual(['KAFKA_TOPIC_PREFIX'])
    expect(problemsOf({ KAFKA_TOPIC_PREFIX: 'x'.repeat(239) })).toEqual(['KAFKA_TOPIC_PREFIX'])
    expect(parseEnv(Env, { KAFKA_TOPIC_PREFIX: 'staging.v2_' }).KAFKA_TOPIC_PREFIX).toBe('staging.v2_')
  })

  it('reads the replication factor and Redis Cluster nodes', () => {
    const e = parseEnv(Env, { KAFKA_REPLICATION_FACTOR: '3', REDIS_CLUSTER_NODES: '10.0.0.1:7000, 10.0.0.2:7001' })
    expect(e.KAFKA_REPLICATION_FACTOR).toBe(3)
    expect(e.REDIS_CLUSTER_NODES).toEqual(['10.0.0.1:7000', '10.0.0.2:7001'])
    expect(problemsOf({ KAFKA_REPLICATION_FACTOR: '0' })).toEqual(['KAFKA_REPLICATION_FACTOR'])
    expect(problemsOf({ REDIS_CLUSTER_NODES: '10.0.0.1' })).toEqual(['REDIS_CLUSTER_NODES'])
  })

  it('uses the development click-ID key outside production only', () => {
    const warnings: string[] = []
    const problems: { variable: string; message: string }[] = []
    const dev = clickIdSettings(parseEnv(Env, {}), problems, warnings)
    expect(dev.developmentClickIdKey).toBe(true)
    expect(problems).toEqual([])
    expect(warnings).toHaveLength(1)
    clickIdSettings(parseEnv(Env, { NODE_ENV: 'production' }), problems, warnings)
    expect(problems.map((p) => p.variable)).toEqual(['CLICK_ID_KEYS'])
  })
})
