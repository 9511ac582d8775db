import type { Kafka } from 'kafkajs'

export interface LagProbe {
  /** Messages after the group's committed offsets, per topic. */
  consumerLag(): Promise<Map<string, number>>
  close(): Promise<void>
}

/** Reads a group's lag through one admin connection, opened on first use. */
export function createLagProbe(kafka: Kafka, groupId: string, topics: readonly string[]): LagProbe {
  const admin = kafka.admin()
  let connected: Promise<void> | undefined
  return {
    async consumerLag(): Promise<Map<string, number>> {
      connected ??= admin.connect().catch((error: unknown) => {
        connected = undefined
        throw error
      })
      await connected
      const lag = new Map<string, number>()
      const committed = await admin.fetchOffsets({ groupId, topics: [...topics] })
      for (const { topic, partitions } of committed) {
        const ends = await admin.fetchTopicOffsets(topic)
        let total = 0
        for (const end of ends) {
          const offset = partitions.find((p) => p.partition === end.partition)?.offset ?? '-1'
          // -1: nothing committed yet, so everything from the low watermark is lag.
          const from = offset === '-1' ? BigInt(end.low) : BigInt(offset)
          total += Number(BigInt(end.high) - from)
        }
        lag.set(topic, total)
      }
      return lag
    },
    async close(): Promise<void> {
      if (connected) await admin.disconnect()
    },
  }
}
