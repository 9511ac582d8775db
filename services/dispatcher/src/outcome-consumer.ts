import type { Registry } from 'prom-client'
import type { Publisher, PublisherStore } from '@clickjoin/campaigns'
import { outcomeV1Contract, type OutcomeV1, type TopicNames } from '@clickjoin/contracts'
import { createEventConsumer, type EventBatch, type EventConsumer, type EventProducer, type Kafka } from '@clickjoin/kafka'
import type { Logger } from '@clickjoin/service-runtime'
import type { DeliveryQueue } from './delivery-queue.ts'
import { deliveryJobsFor, type DeliveryJob } from './domain/jobs.ts'
import { isPublisherOutcome } from './domain/rules.ts'
import { DISPATCHER_METRIC_PREFIX, type DispatcherMetrics } from './metrics.ts'

export interface OutcomeConsumerDeps {
  kafka: Kafka
  /** Sends the dead letters. */
  producer: EventProducer
  queue: DeliveryQueue
  publishers: PublisherStore
  metrics: DispatcherMetrics
  log: Logger
  /** Called after new deliveries were recorded, so the worker looks at once. */
  onEnqueued: () => void
  now?: () => number
}

const outcomeInputs = (topics: TopicNames) => [{ topic: topics.outcomes, contract: outcomeV1Contract }] as const
type OutcomeInput = ReturnType<typeof outcomeInputs>[number]

/**
 * Reads the outcomes topic through the shared event consumer (decode, dead-letter, count,
 * lag, restart after a crash) and turns every attributed conversion version into its pending
 * deliveries, recorded in Redis before the batch's offsets are committed: a crash before the
 * commit replays the batch, and the replay finds the jobs already there (their IDs are
 * deterministic), so each version is enqueued once.
 */
export function createOutcomeConsumer(
  deps: OutcomeConsumerDeps,
  settings: { topics: TopicNames; groupId: string; sessionTimeoutMs: number | undefined; registry: Registry },
): EventConsumer {
  const now = deps.now ?? Date.now

  async function enqueueDeliveries(batch: EventBatch<OutcomeInput>): Promise<void> {
    const outcomes: OutcomeV1[] = []
    for (const { value } of batch.events) {
      if (isPublisherOutcome(value)) outcomes.push(value)
      else deps.metrics.outcomes.inc({ result: 'not_attributed' })
    }
    if (outcomes.length === 0) return
    const publishers: Map<string, Publisher> = await deps.publishers.publishers(outcomes.map((o) => o.publisher_id))
    const t = now()
    const jobs: DeliveryJob[] = []
    for (const outcome of outcomes) {
      const publisher = publishers.get(outcome.publisher_id)
      const forOutcome = publisher ? deliveryJobsFor(outcome, publisher, t) : []
      deps.metrics.outcomes.inc({ result: forOutcome.length > 0 ? 'deliveries' : 'no_rules' })
      jobs.push(...forOutcome)
    }
    if (jobs.length === 0) return
    const added = await deps.queue.enqueue(jobs, t)
    deps.metrics.enqueued.inc(added)
    if (added > 0) deps.onEnqueued()
  }

  return createEventConsumer(deps.kafka, {
    groupId: settings.groupId,
    inputs: outcomeInputs(settings.topics),
    deadLetterTopic: settings.topics.deadLetter,
    deadLetters: deps.producer,
    metrics: { registry: settings.registry, metricPrefix: DISPATCHER_METRIC_PREFIX.slice(0, -1) },
    fromBeginning: true,
    partitionsConsumedConcurrently: 4,
    ...(settings.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: settings.sessionTimeoutMs }),
    log: deps.log,
    handleEvents: enqueueDeliveries,
  })
}
