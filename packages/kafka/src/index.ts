export { createKafka, type KafkaConnectionOptions } from './client.ts'
export { createFastProducer } from './fast-producer.ts'
export {
  createBatchingProducer,
  KafkaUnavailableError,
  MessageWithdrawnError,
  type BatchingProducerOptions,
  type EventProducer,
  type OutgoingMessage,
  type ProducerStats,
} from './producer.ts'
export {
  createBatchConsumer,
  GROUP_HEARTBEAT_INTERVAL_MS,
  GROUP_SESSION_TIMEOUT_MS,
  type BatchConsumer,
  type BatchConsumerOptions,
  type CommitDeferringConsumer,
  type ConsumerLog,
  type DeferredCommit,
  type PartitionBatch,
} from './consumer.ts'
export {
  createEventConsumer,
  type DeadLetterSender,
  type DecodedMessage,
  type EventBatch,
  type EventConsumer,
  type EventConsumerOptions,
  type EventInput,
} from './event-consumer.ts'
export { createLagProbe, type LagProbe } from './lag.ts'
export { partitionOfKey } from './murmur2.ts'
export {
  ensurePipelineTopics,
  pipelineTopicsComponent,
  ensureTopics,
  pipelineTopicSpecs,
  type PipelineTopicSettings,
  type TopicSpec,
} from './topics.ts'
export type { Kafka, KafkaMessage } from 'kafkajs'
