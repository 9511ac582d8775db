import { describe, expect, it } from 'vitest'
import { isTopicRace, pipelineTopicSpecs } from './topics.ts'

describe('pipeline topics', () => {
  it('one partition count for every topic; min.insync.replicas=2 from three replicas on', () => {
    const single = pipelineTopicSpecs({ topicPrefix: 'stg.', partitions: 12, replicationFactor: 1 })
    expect(single.map((s) => s.topic)).toEqual(['stg.clicks', 'stg.conversions', 'stg.outcomes', 'stg.dead_letter', 'stg.postback_deliveries'])
    expect(single.every((s) => s.numPartitions === 12 && Object.keys(s.configs ?? {}).length === 0)).toBe(true)
    const replicated = pipelineTopicSpecs({ topicPrefix: '', partitions: 6, replicationFactor: 3 })
    expect(replicated.map((s) => s.configs)).toEqual(Array(5).fill({ 'min.insync.replicas': '2' }))
  })

  it('refuses a prefix Kafka would refuse', () => {
    expect(() => pipelineTopicSpecs({ topicPrefix: 'bad prefix!', partitions: 6, replicationFactor: 1 })).toThrow(RangeError)
  })
})

describe('isTopicRace', () => {
  it('is a topic another service is creating, never a real failure', () => {
    expect(isTopicRace({ type: 'UNKNOWN_TOPIC_OR_PARTITION' })).toBe(true)
    expect(isTopicRace({ errors: [{ type: 'TOPIC_ALREADY_EXISTS' }, { type: 'LEADER_NOT_AVAILABLE' }] })).toBe(true)
    expect(isTopicRace({ errors: [{ type: 'TOPIC_ALREADY_EXISTS' }, { type: 'POLICY_VIOLATION' }] })).toBe(false)
    expect(isTopicRace({ errors: [] })).toBe(false)
    expect(isTopicRace(new Error('topic clicks has 3 partitions, expected 6'))).toBe(false)
    expect(isTopicRace(undefined)).toBe(false)
  })
})
