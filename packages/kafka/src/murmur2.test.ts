import { randomBytes } from 'node:crypto'
import { compatibilityPartitioner } from '@platformatic/kafka'
import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'
import { javaCompatiblePartitioner, murmur2 } from './murmur2.ts'

// Known values of the Java client's Utils.murmur2 (its test suite, UtilsTest.testMurmur2).
const JAVA_CASES: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
]

describe('murmur2', () => {
  it.each(JAVA_CASES)("gives the Java client's hash of %j", (text, hash) => {
    expect(murmur2(Buffer.from(text))).toBe(hash)
  })

  it('agrees with kafkajs and @platformatic/kafka on every length and byte', () => {
    const kafkajs = Partitioners.DefaultPartitioner()
    for (const n of [1, 3, 12]) {
      const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }))
      for (let i = 0; i < 3_000; i++) {
        const key = randomBytes(i % 70)
        const ours = javaCompatiblePartitioner(undefined, key)
        expect(ours).toBe(compatibilityPartitioner({ key } as never, key))
        expect(ours % n).toBe(kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }))
      }
    }
  })
})
