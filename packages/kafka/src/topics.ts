import type { Kafka } from 'kafkajs'

export interface TopicSpec {
  topic: string
  numPartitions: number
  /** Extra topic configs, e.g. retention.ms. */
  configs?: Record<string, string>
}

/**
 * Creates the topics that do not exist yet. Existing topics are left as they are, but a
 * partition count that differs from the spec is an error: clicks and conversions must stay
 * co-partitioned, so we refuse to run rather than join on mismatched partitions.
 */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const missing = specs.filter((s) => !existing.has(s.topic))
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((s) => ({
          topic: s.topic,
          numPartitions: s.numPartitions,
          replicationFactor: -1,
          configEntries: Object.entries(s.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      })
    }
    const present = specs.filter((s) => existing.has(s.topic))
    if (present.length > 0) {
      const { topics } = await admin.fetchTopicMetadata({ topics: present.map((s) => s.topic) })
      for (const meta of topics) {
        const spec = present.find((s) => s.topic === meta.name)
        if (spec && meta.partitions.length !== spec.numPartitions) {
          throw new Error(
            `topic ${meta.name} has ${meta.partitions.length} partitions, expected ${spec.numPartitions}`,
          )
        }
      }
    }
  } finally {
    await admin.disconnect()
  }
}
