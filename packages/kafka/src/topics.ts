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
  options: { replicationFactor?: number; settleMs?: number } = {},
): Promise<void> {
  const settleMs = options.settleMs ?? 30_000
  const deadline = Date.now() + settleMs
  for (let delayMs = 100; ; delayMs = Math.min(delayMs * 2, 2_000)) {
    try {
      return await ensureTopicsOnce(kafka, specs, options.replicationFactor ?? -1)
    } catch (err) {
      // Every service ensures the same topics at start: another one may be creating them this
      // very moment (a topic that "already exists" in the same request), or the broker that
      // answers has not learnt of a topic the controller just made ("does not host this
      // topic-partition"). Both settle within moments: look again.
      if (!isTopicRace(err) || Date.now() + delayMs > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, delayMs))
    }
  }
}

const RACE_ERROR_TYPES = new Set(['TOPIC_ALREADY_EXISTS', 'UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE'])

/** A kafkajs error (or aggregate of errors) that only says topics are being created elsewhere. */
export function isTopicRace(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { type, errors } = err as { type?: unknown; errors?: unknown }
  if (Array.isArray(errors) && errors.length > 0) return errors.every(isTopicRace)
  return typeof type === 'string' && RACE_ERROR_TYPES.has(type)
}

async function ensureTopicsOnce(kafka: Kafka, specs: TopicSpec[], replicationFactor: number): Promise<void> {
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
    // Every topic is checked, also the ones just created (their metadata must be there).
    const { topics } = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) })
    for (const meta of topics) {
      const spec = specs.find((s) => s.topic === meta.name)
      if (spec && meta.partitions.length !== spec.numPartitions) {
        throw new Error(`topic ${meta.name} has ${meta.partitions.length} partitions, expected ${spec.numPartitions}`)
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

/**
 * The pipeline's topics as a service component (structurally a service-runtime Component):
 * ensured once at start, before the producers and consumers that use them.
 */
export function pipelineTopicsComponent(
  kafka: Kafka,
  settings: PipelineTopicSettings,
): { id: 'kafka-topics'; start(): Promise<void>; health(): { ok: boolean; detail: string } } {
  return {
    id: 'kafka-topics',
    start: async () => void (await ensurePipelineTopics(kafka, settings)),
    health: () => ({ ok: true, detail: 'ensured at start' }),
  }
}
