export { createKafka, type KafkaConnectionOptions } from './client.ts'
export {
  createBatchingProducer,
  KafkaUnavailableError,
  type BatchingProducerOptions,
  type EventProducer,
  type OutgoingMessage,
  type ProducerStats,
} from './producer.ts'
export {
  createBatchConsumer,
  type BatchConsumer,
  type BatchConsumerOptions,
  type PartitionBatch,
} from './consumer.ts'
export { ensureTopics, type TopicSpec } from './topics.ts'
export type { Kafka, KafkaMessage } from 'kafkajs'
