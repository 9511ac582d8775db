import { randomBytes } from 'node:crypto'
import { compatibilityPartitioner, defaultPartitioner } from '@platformatic/kafka'
import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { javaPartitioner, murmur2 } from './murmur2.ts'

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

describe('the integer murmur2 ingest partitions with', () => {
  const partitionMetadata = (n: number) =>
    Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }))
  // Every length 0–99 (each tail length), random bytes (high bits set half the time), click-ID-like text.
  const keys = [
    ...Array.from({ length: 4_000 }, (_, i) => randomBytes(i % 100)),
    ...Array.from({ length: 1_000 }, () => Buffer.from(randomBytes(24).toString('base64url'))),
    Buffer.alloc(0),
    Buffer.alloc(13, 0xff),
  ]

  it("hashes as @platformatic/kafka's BigInt murmur2 does (the sign bit included)", () => {
    const differ = keys.filter((key) => javaPartitioner({}, key) !== compatibilityPartitioner({ key } as never, key))
    expect(differ).toEqual([])
    const signed = keys.filter((key) => murmur2(key) < 0)
    expect(signed.length).toBeGreaterThan(keys.length / 4)
    expect(keys.filter((key) => (murmur2(key) >>> 0) !== defaultPartitioner({ key } as never, key))).toEqual([])
  })

  it.each([1, 3, 6, 7, 64])('puts a key where kafkajs does, on %i partitions', (n) => {
    const kafkajs = Partitioners.DefaultPartitioner()
    const meta = partitionMetadata(n)
    const moved = keys.filter((key) => javaPartitioner({}, key) % n !== kafkajs({ topic: 't', partitionMetadata: meta, message: { key, value: null } }))
    expect(moved).toEqual([])
  })

  // Known values of the Java client's Utils.murmur2 (its UtilsTest.testMurmur2).
  it.each([
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ])("gives the Java client's hash of %j", (text, hash) => {
    expect(murmur2(Buffer.from(text))).toBe(hash)
  })

  it('sends a message without a key to partition 0, as the compatibility partitioner does', () => {
    expect(javaPartitioner({}, undefined)).toBe(0)
    expect(compatibilityPartitioner({} as never, undefined as never)).toBe(0)
  })
})
