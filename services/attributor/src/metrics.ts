import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { metricPrefix } from '@clickjoin/service-runtime'

const name = (suffix: string) => `${metricPrefix('attributor')}${suffix}`

/** Latency of one kind of round trip, by operation: Redis and ClickHouse alike. */
function latencyByOperation(registry: Registry, suffix: string, help: string, buckets: number[]) {
  return new Histogram({ name: name(suffix), help, labelNames: ['op'] as const, buckets, registers: [registry] })
}

/** The attributor's own metrics, registered on the service's registry, all named `clickjoin_attributor_…`. */
export function createAttributorMetrics(registry: Registry) {
  return {
    decisions: new Counter({
      name: name('decisions_total'),
      help: 'Conversion decisions made (new conversions and status updates), by outcome and reason',
      labelNames: ['kind', 'outcome', 'reason'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: name('duplicate_postbacks_total'),
      help: 'Postbacks that repeated a decided conversion with the same status (no change)',
      registers: [registry],
    }),
    replays: new Counter({
      name: name('replayed_outcomes_total'),
      help: 'Redelivered postbacks whose earlier outcome was published again',
      registers: [registry],
    }),
    parked: new Counter({
      name: name('parked_postbacks_total'),
      help: 'Postbacks parked to wait for their click',
      registers: [registry],
    }),
    clicks: new Counter({
      name: name('clicks_recorded_total'),
      help: 'Clicks written to Redis',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: name('dead_letters_total'),
      help: 'Messages sent to the dead-letter topic, by source topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    published: new Counter({
      name: name('outcomes_published_total'),
      help: 'Outcome messages acknowledged by Kafka (replays and re-publications included)',
      registers: [registry],
    }),
    redisSeconds: latencyByOperation(registry, 'redis_seconds', 'Latency of Redis round trips (one pipeline each), by operation', [
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
    ]),
    consumerLag: new Gauge({
      name: name('consumer_lag_messages'),
      help: 'Messages not yet committed by the attributor group, by topic and partition',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    parkedNow: new Gauge({
      name: name('parked_postbacks_waiting'),
      help: 'Postbacks currently waiting for their click',
      registers: [registry],
    }),
    coldSeconds: latencyByOperation(
      registry,
      'clickhouse_seconds',
      'How long a round waited for a cold-tier lookup in ClickHouse, by operation: one observation per call; concurrent cold_conversions calls share queries (clickjoin_attributor_clickhouse_queries_total counts those sent)',
      [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    ),
    coldQueries: new Counter({
      name: name('clickhouse_queries_total'),
      help: 'SQL queries sent to the cold tier, by query: a cold_conversions lookup sends conversions_exist, then conversions_final only if some exist; cold_clicks sends clicks; the sink-lag probe clicks_exist',
      labelNames: ['query'] as const,
      registers: [registry],
    }),
    coldErrors: new Counter({
      name: name('clickhouse_errors_total'),
      help: 'Cold-tier lookups that failed (the batch waits and is retried; nothing is decided meanwhile)',
      registers: [registry],
    }),
    coldTierLag: new Gauge({
      name: name('cold_tier_lag_seconds'),
      help: 'Age of the oldest click recorded in Redis that ClickHouse does not show yet (the sink lag as the join sees it)',
      registers: [registry],
    }),
    uncommittedBatchAge: new Gauge({
      name: name('oldest_uncommitted_batch_seconds'),
      help: 'How long the oldest batch this member handles has gone uncommitted (retried in place or redelivered to it); past the hot period its postbacks\' decision records (b:) expire, so alarm well before',
      registers: [registry],
    }),
    publishFailures: new Counter({
      name: name('outcome_publish_failures_total'),
      help: 'Background publications of freshly decided outcomes that failed (the entries stay in the outbox; the drain publishes them after 10 s)',
      registers: [registry],
    }),
    hotPeriod: new Gauge({
      name: name('hot_period_seconds'),
      help: 'ATTRIBUTOR_HOT_SECONDS: how long clicks and decided conversions stay in Redis; the cold-tier lag must stay well below it',
      registers: [registry],
    }),
  }
}
export type AttributorMetrics = ReturnType<typeof createAttributorMetrics>
