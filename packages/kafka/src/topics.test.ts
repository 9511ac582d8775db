import { describe, expect, it } from 'vitest'
import { pipelineTopicSpecs } from './topics.ts'

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
