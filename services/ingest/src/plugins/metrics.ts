import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { JournalStats } from '../journal/journal.ts'

/** The service's own Prometheus metrics, on the registry `/metrics` serves. */
export function createIngestMetrics(registry: Registry) {
  return {
    requests: new Counter({
      name: 'clickjoin_ingest_http_requests_total',
      help: 'HTTP requests answered, by route, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'clickjoin_ingest_http_request_duration_seconds',
      help: 'Time to answer, by route (includes waiting for the Kafka acknowledgement)',
      labelNames: ['route'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    rejects: new Counter({
      name: 'clickjoin_ingest_rejects_total',
      help: 'Requests refused or not recorded, by reason (the error code answered)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: 'clickjoin_ingest_events_published_total',
      help: 'Events acknowledged by Kafka, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    kafkaBatchMessages: new Histogram({
      name: 'clickjoin_ingest_kafka_batch_messages',
      help: 'Messages per Kafka produce batch',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
      registers: [registry],
    }),
    kafkaBatchDuration: new Histogram({
      name: 'clickjoin_ingest_kafka_batch_duration_seconds',
      help: 'Time from sending a batch to the broker acknowledgement, by outcome',
      labelNames: ['ok'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    journaled: new Counter({
      name: 'clickjoin_ingest_journal_appended_total',
      help: 'Browser events put in the local journal instead of Kafka, by reason (backlog: a pixel while the journal was not empty; kafka_down: producer unhealthy; kafka_slow: within 1 s of a fallback; timeout: still queued at the fallback deadline; error: failed or unacknowledged on the wire)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    journalDelivered: new Counter({
      name: 'clickjoin_ingest_journal_delivered_total',
      help: 'Journaled events acknowledged by Kafka',
      registers: [registry],
    }),
    redisErrors: new Counter({
      name: 'clickjoin_ingest_redis_errors_total',
      help: 'Redis commands that failed on the click path (publishing clicks to the shared duplicate-click window)',
      registers: [registry],
    }),
  }
}
export type IngestMetrics = ReturnType<typeof createIngestMetrics>

/** Gauges read from the journal when /metrics is scraped. */
export function registerJournalGauges(registry: Registry, stats: () => JournalStats, now: () => number = Date.now): void {
  new Gauge({
    name: 'clickjoin_ingest_journal_bytes',
    help: 'Bytes of undelivered events in the local journal (INGEST_JOURNAL_MAX_BYTES bounds it)',
    registers: [registry],
    collect() {
      this.set(stats().bytes)
    },
  })
  new Gauge({
    name: 'clickjoin_ingest_journal_events',
    help: 'Undelivered events in the local journal',
    registers: [registry],
    collect() {
      this.set(stats().events)
    },
  })
  new Gauge({
    name: 'clickjoin_ingest_journal_oldest_age_seconds',
    help: 'Age of the oldest undelivered event in the local journal (0 when empty)',
    registers: [registry],
    collect() {
      const oldest = stats().oldestAppendedAtMs
      this.set(oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000))
    },
  })
}

/** The producer's onBatch callback. */
export function observeKafkaBatch(metrics: IngestMetrics) {
  return (batch: { messages: number; durationMs: number; ok: boolean }) => {
    metrics.kafkaBatchMessages.observe(batch.messages)
    metrics.kafkaBatchDuration.observe({ ok: String(batch.ok) }, batch.durationMs / 1000)
  }
}

declare module 'fastify' {
  interface FastifyReply {
    /** The error code of a refusal, for the rejects metric; '' when the request succeeded. */
    rejectReason: string
  }
}

/** Counts and times every answer by route; counts refusals by reason. */
export const requestMetrics = fp<{ metrics: IngestMetrics }>(
  async (app, { metrics }) => {
    app.decorateReply('rejectReason', '')
    // Label children looked up once per label set: prom-client hashes the labels on every
    // inc({…}), a visible share of a click's CPU.
    const counted = new Map<string, Counter.Internal>()
    const timed = new Map<string, Histogram.Internal<'route'>>()
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched'
      const key = `${route} ${request.method} ${reply.statusCode}`
      let requests = counted.get(key)
      if (!requests) counted.set(key, (requests = metrics.requests.labels(route, request.method, String(reply.statusCode))))
      requests.inc()
      let duration = timed.get(route)
      if (!duration) timed.set(route, (duration = metrics.requestDuration.labels(route)))
      duration.observe(reply.elapsedTime / 1000)
      if (reply.rejectReason) metrics.rejects.inc({ reason: reply.rejectReason })
      done()
    })
  },
  { name: 'ingest-request-metrics' },
)
