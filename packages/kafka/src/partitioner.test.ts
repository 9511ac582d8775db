import { compatibilityPartitioner, defaultPartitioner } from '@platformatic/kafka'
import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'

// Ingest produces with @platformatic/kafka, the services that read and (re)write clicks with
// kafkajs: a key must land on the same partition with both, or per-identity order breaks.
describe('key → partition across the two clients', () => {
  const kafkajs = Partitioners.DefaultPartitioner()
  const keys = Array.from({ length: 2_000 }, (_, i) => Buffer.from(i % 2 ? `click-${i}` : `${i * 7919}:cv-${i}`))

  it.each([1, 3, 6, 7, 12, 64])('the compatibility partitioner (ingest) agrees with kafkajs on %i partitions', (n) => {
    const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }))
    const moved = keys.filter((key) => compatibilityPartitioner({ key } as never, key) % n !== kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }))
    expect(moved).toEqual([])
  })

  it("@platformatic/kafka's default partitioner would not: a key with a negative murmur2 hash moves", () => {
    const partitionMetadata = Array.from({ length: 6 }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }))
    const moved = keys.filter((key) => defaultPartitioner({ key } as never, key) % 6 !== kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }))
    expect(moved.length).toBeGreaterThan(keys.length / 4)
  })
})
