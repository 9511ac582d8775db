import { describe, expect, it } from 'vitest'
import { testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { createKafka } from './client.ts'
import { ensurePipelineTopics } from './topics.ts'

describe('pipeline topics on a real broker', () => {
  it('twelve services ensuring the same new topics at the same moment all start, and the topics are whole', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topicPrefix = `${uniqueName('race')}.`
    const services = Array.from({ length: 12 }, (_, i) => createKafka({ brokers: kafkaBrokers, clientId: `race-${i}` }))
    const settings = { topicPrefix, partitions: 6, replicationFactor: 1 }

    const results = await Promise.allSettled(services.map((kafka) => ensurePipelineTopics(kafka, settings)))

    expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual(Array(12).fill('ok'))
    const admin = services[0]!.admin()
    await admin.connect()
    try {
      const names = (await admin.listTopics()).filter((t) => t.startsWith(topicPrefix)).sort()
      expect(names).toEqual(['clicks', 'conversions', 'dead_letter', 'outcomes', 'postback_deliveries'].map((t) => topicPrefix + t))
      const { topics } = await admin.fetchTopicMetadata({ topics: names })
      expect(topics.map((t) => t.partitions.length)).toEqual([6, 6, 6, 6, 6])
    } finally {
      await admin.disconnect()
    }
  })
})
