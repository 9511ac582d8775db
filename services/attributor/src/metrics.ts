import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** The attributor's own metrics, registered on the service's registry. */
export function createAttributorMetrics(registry: Registry) {
  return {
    decisions: new Counter({
      name: 'attributor_decisions_total',
      help: 'Conversion decisions made (new conversions and status updates), by outcome and reason',
      labelNames: ['kind', 'outcome', 'reason'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'attributor_duplicate_postbacks_total',
      help: 'Postbacks that repeated a decided conversion with the same status (no change)',
      registers: [registry],
    }),
    replays: new Counter({
      name: 'attributor_replayed_outcomes_total',
      help: 'Redelivered postbacks whose earlier outcome was published again',
      registers: [registry],
    }),
    parked: new Counter({
      name: 'attributor_parked_postbacks_total',
      help: 'Postbacks parked to wait for their click',
      registers: [registry],
    }),
    clicks: new Counter({
      name: 'attributor_clicks_recorded_total',
      help: 'Clicks written to Redis',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'attributor_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    published: new Counter({
      name: 'attributor_outcomes_published_total',
      help: 'Outcome messages acknowledged by Kafka (replays and re-publications included)',
      registers: [registry],
    }),
    redisSeconds: new Histogram({
      name: 'attributor_redis_seconds',
      help: 'Latency of Redis round trips (one pipeline each), by operation',
      labelNames: ['op'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    consumerLag: new Gauge({
      name: 'attributor_consumer_lag_messages',
      help: 'Messages not yet committed by the attributor group, by topic and partition',
      labelNames: ['topic', 'partition'] as const,
      registers: [registry],
    }),
    parkedNow: new Gauge({
      name: 'attributor_parked_postbacks',
      help: 'Postbacks currently waiting for their click',
      registers: [registry],
    }),
    coldSeconds: new Histogram({
      name: 'attributor_clickhouse_seconds',
      help: 'Latency of cold-tier lookups in ClickHouse (one query per batch), by operation',
      labelNames: ['op'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    coldErrors: new Counter({
      name: 'attributor_clickhouse_errors_total',
      help: 'Cold-tier lookups that failed (the batch waits and is retried; nothing is decided meanwhile)',
      registers: [registry],
    }),
    coldTierLag: new Gauge({
      name: 'attributor_cold_tier_lag_seconds',
      help: 'Age of the oldest click recorded in Redis that ClickHouse does not show yet (the sink lag as the join sees it)',
      registers: [registry],
    }),
    hotPeriod: new Gauge({
      name: 'attributor_hot_period_seconds',
      help: 'ATTRIBUTOR_HOT_SECONDS: how long clicks and decided conversions stay in Redis; the cold-tier lag must stay well below it',
      registers: [registry],
    }),
  }
}
export type AttributorMetrics = ReturnType<typeof createAttributorMetrics>
