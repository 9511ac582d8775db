import type { Consumer, Kafka, KafkaMessage } from 'kafkajs'

export interface PartitionBatch {
  topic: string
  partition: number
  messages: KafkaMessage[]
  /** Call during long work so the group does not consider this member dead. */
  heartbeat(): Promise<void>
  /** False once the consumer is stopping or the partition was revoked: stop early. */
  isActive(): boolean
}

export interface BatchConsumerOptions {
  groupId: string
  topics: string[]
  /** Where a new group starts. Pipelines read from the beginning so nothing is skipped. */
  fromBeginning?: boolean
  /** Partitions handled in parallel by this member. */
  partitionsConsumedConcurrently?: number
  sessionTimeoutMs?: number
  maxBytesPerPartition?: number
  /** Upper bound of one fetch over all partitions (kafkajs default 10 MiB). */
  maxBytes?: number
  /** Long-poll time of an empty fetch; also how long a stop may wait for it. */
  maxWaitTimeMs?: number
  /**
   * Processes the whole batch durably, or throws. Offsets are committed only after it
   * resolves, so a crash or an error redelivers the batch: the handler must be idempotent.
   */
  handleBatch(batch: PartitionBatch): Promise<void>
}

export interface BatchConsumer {
  readonly id: string
  start(): Promise<void>
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
}

/** eachBatch with explicit commits of exactly what the handler finished. */
export function createBatchConsumer(kafka: Kafka, options: BatchConsumerOptions): BatchConsumer {
  const consumer: Consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs ?? 30_000,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 4 * 1024 * 1024,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
    ...(options.maxWaitTimeMs === undefined ? {} : { maxWaitTimeInMs: options.maxWaitTimeMs }),
    allowAutoTopicCreation: false,
  })
  let state: 'idle' | 'joining' | 'running' | 'crashed' | 'stopped' = 'idle'
  let detail = 'not started'

  consumer.on(consumer.events.GROUP_JOIN, () => {
    state = 'running'
    detail = 'member of group'
  })
  consumer.on(consumer.events.CRASH, (e) => {
    state = 'crashed'
    detail = `crashed: ${e.payload.error.message}${e.payload.restart ? ' (restarting)' : ''}`
  })

  return {
    id: `kafka-consumer:${options.groupId}`,
    async start() {
      state = 'joining'
      detail = 'joining group'
      await consumer.connect()
      await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? true })
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          if (batch.messages.length === 0) return
          await options.handleBatch({
            topic: batch.topic,
            partition: batch.partition,
            messages: batch.messages,
            heartbeat,
            isActive: () => isRunning() && !isStale(),
          })
          const last = batch.lastOffset()
          resolveOffset(last)
          await consumer.commitOffsets([
            { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
          ])
        },
      })
    },
    async stop() {
      await consumer.disconnect()
      state = 'stopped'
      detail = 'stopped'
    },
    health() {
      return { ok: state === 'running', detail }
    },
  }
}
