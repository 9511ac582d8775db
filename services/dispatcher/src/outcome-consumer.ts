import type { Publisher, PublisherStore } from '@clickjoin/campaigns'
import { deadLetterMessage, decodeEvent, outcomeV1Contract, type OutcomeV1, type TopicNames } from '@clickjoin/contracts'
import { createBatchConsumer, type BatchConsumer, type EventProducer, type Kafka, type PartitionBatch } from '@clickjoin/kafka'
import type { Logger } from '@clickjoin/service-runtime'
import type { DeliveryQueue } from './delivery-queue.ts'
import { deliveryJobsFor, type DeliveryJob } from './domain/jobs.ts'
import { isPublisherOutcome } from './domain/rules.ts'
import type { DispatcherMetrics } from './metrics.ts'

export interface OutcomeConsumerDeps {
  kafka: Kafka
  producer: EventProducer
  queue: DeliveryQueue
  publishers: PublisherStore
  metrics: DispatcherMetrics
  log: Logger
  /** Called after new deliveries were recorded, so the worker looks at once. */
  onEnqueued: () => void
  now?: () => number
}

/**
 * Reads the outcomes topic and turns every attributed conversion version into its pending
 * deliveries, recorded in Redis before the batch's offsets are committed: a crash before the
 * commit replays the batch, and the replay finds the jobs already there (their IDs are
 * deterministic), so each version is enqueued once.
 */
export function createOutcomeConsumer(
  deps: OutcomeConsumerDeps,
  settings: { topics: TopicNames; groupId: string; sessionTimeoutMs?: number },
): BatchConsumer {
  const now = deps.now ?? Date.now

  async function handleBatch(batch: PartitionBatch): Promise<void> {
    const outcomes: OutcomeV1[] = []
    const deadLetters: Array<Promise<void>> = []
    for (const message of batch.messages) {
      const decoded = decodeEvent(outcomeV1Contract, message.value)
      if (!decoded.ok) {
        deps.metrics.outcomes.inc({ result: 'dead_letter' })
        deps.log.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason: decoded.reason }, 'dead-lettered message')
        deadLetters.push(
          deps.producer.send(
            settings.topics.deadLetter,
            deadLetterMessage({
              sourceTopic: batch.topic,
              partition: batch.partition,
              offset: message.offset,
              key: message.key,
              value: message.value,
              reason: decoded.reason,
            }),
          ),
        )
      } else if (isPublisherOutcome(decoded.value)) outcomes.push(decoded.value)
      else deps.metrics.outcomes.inc({ result: 'not_attributed' })
    }

    const publishers: Map<string, Publisher> =
      outcomes.length === 0 ? new Map() : await deps.publishers.publishers(outcomes.map((o) => o.publisher_id))
    const t = now()
    const jobs: DeliveryJob[] = []
    for (const outcome of outcomes) {
      const publisher = publishers.get(outcome.publisher_id)
      const forOutcome = publisher ? deliveryJobsFor(outcome, publisher, t) : []
      deps.metrics.outcomes.inc({ result: forOutcome.length > 0 ? 'deliveries' : 'no_rules' })
      jobs.push(...forOutcome)
    }
    if (jobs.length > 0) {
      const added = await deps.queue.enqueue(jobs, t)
      deps.metrics.enqueued.inc(added)
      if (added > 0) deps.onEnqueued()
    }
    await Promise.all(deadLetters)
  }

  return createBatchConsumer(deps.kafka, {
    groupId: settings.groupId,
    topics: [settings.topics.outcomes],
    fromBeginning: true,
    partitionsConsumedConcurrently: 4,
    ...(settings.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: settings.sessionTimeoutMs }),
    handleBatch,
  })
}
