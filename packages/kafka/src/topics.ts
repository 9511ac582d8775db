import type { Kafka } from 'kafkajs'
import { topicNames, type TopicNames } from '@clickjoin/contracts'

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
export async function ensureTopics(
  kafka: Kafka,
  specs: TopicSpec[],
  options: { replicationFactor?: number } = {},
): Promise<void> {
  const replicationFactor = options.replicationFactor ?? -1
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
          // -1: the broker's default.replication.factor (1 on the local broker).
          replicationFactor,
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

export interface PipelineTopicSettings {
  /** `KAFKA_TOPIC_PREFIX`. */
  topicPrefix: string
  /** `KAFKA_TOPIC_PARTITIONS`: the same for every topic, so clicks and conversions stay co-partitioned. */
  partitions: number
  /** `KAFKA_REPLICATION_FACTOR`. */
  replicationFactor: number
}

/**
 * The pipeline's topics as every service creates them: one partition count for all, the
 * configured replication factor, and with 3 or more replicas `min.insync.replicas=2`, so an
 * acknowledged event (acks=all) is on two brokers before the producer hears "ok".
 */
export function pipelineTopicSpecs(settings: PipelineTopicSettings): TopicSpec[] {
  const configs: Record<string, string> = settings.replicationFactor >= 3 ? { 'min.insync.replicas': '2' } : {}
  return Object.values(topicNames(settings.topicPrefix)).map((topic) => ({
    topic,
    numPartitions: settings.partitions,
    configs,
  }))
}

/** The one place topics are created: every service calls this at start, whoever is first creates them. */
export async function ensurePipelineTopics(kafka: Kafka, settings: PipelineTopicSettings): Promise<TopicNames> {
  await ensureTopics(kafka, pipelineTopicSpecs(settings), { replicationFactor: settings.replicationFactor })
  return topicNames(settings.topicPrefix)
}
