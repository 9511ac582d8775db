import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client'
import type { JournalStats } from '../journal/journal.ts'

/**
 * Counts kept as plain numbers per label set and added to a prom-client counter when it is
 * scraped: prom-client hashes and validates the labels on every `inc` — also through a
 * `labels(…)` child — which was a visible share of a click's CPU.
 */
export class DeferredCounts<L extends string> {
  private readonly pending: Array<{ labels: Partial<Record<L, string>>; n: number }> = []

  /** A counter of one label set: call the result to count one. */
  child(labels: Partial<Record<L, string>>): () => void {
    const entry = { labels, n: 0 }
    this.pending.push(entry)
    return () => void entry.n++
  }

  /** Adds what was counted since the last flush (the counter's `collect`). */
  flush(counter: Counter<L>): void {
    for (const entry of this.pending) {
      if (entry.n === 0) continue
      counter.inc(entry.labels, entry.n)
      entry.n = 0
    }
  }
}

/**
 * A Prometheus histogram with one label, observed in plain arrays and rendered by the
 * registry at scrape time (the same exposition as prom-client's Histogram). prom-client's
 * `observe` hashes, validates and copies the labels on every call.
 */
export class LabelledHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly series = new Map<string, { counts: Float64Array; sum: number; count: number }>()

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly upperBounds: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric)
  }

  /** The observer of one label value (looked up once, not per observation). */
  child(labelValue: string): (value: number) => void {
    let s = this.series.get(labelValue)
    if (!s) this.series.set(labelValue, (s = { counts: new Float64Array(this.upperBounds.length), sum: 0, count: 0 }))
    const series = s
    const bounds = this.upperBounds
    return (value) => {
      series.sum += value
      series.count++
      for (let i = 0; i < bounds.length; i++) {
        if (value <= bounds[i]!) {
          series.counts[i]!++
          return
        }
      }
    }
  }

  get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = []
    for (const [labelValue, s] of this.series) {
      let cumulative = 0
      this.upperBounds.forEach((le, i) => {
        cumulative += s.counts[i]!
        values.push({ labels: { le, [this.labelName]: labelValue }, value: cumulative, metricName: `${this.name}_bucket` })
      })
      values.push({ labels: { le: '+Inf', [this.labelName]: labelValue }, value: s.count, metricName: `${this.name}_bucket` })
      values.push({ labels: { [this.labelName]: labelValue }, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { [this.labelName]: labelValue }, value: s.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset(): void {
    this.series.clear()
  }
}

/** The service's own Prometheus metrics, on the registry `/metrics` serves. */
export function createIngestMetrics(registry: Registry) {
  const requestCounts = new DeferredCounts<'route' | 'method' | 'status'>()
  const publishedCounts = new DeferredCounts<'kind'>()
  return {
    requestCounts,
    requests: new Counter({
      name: 'clickjoin_ingest_http_requests_total',
      help: 'HTTP requests answered, by route, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      registers: [registry],
      collect() {
        requestCounts.flush(this)
      },
    }),
    requestDuration: new LabelledHistogram(
      'clickjoin_ingest_http_request_duration_seconds',
      'Time to answer, by route (includes waiting for the Kafka acknowledgement)',
      'route',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registry,
    ),
    rejects: new Counter({
      name: 'clickjoin_ingest_rejects_total',
      help: 'Requests refused or not recorded, by reason (the error code answered)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    publishedCounts,
    eventsPublished: new Counter({
      name: 'clickjoin_ingest_events_published_total',
      help: 'Events acknowledged by Kafka, by kind',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect() {
        publishedCounts.flush(this)
      },
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
    // Counted in plain numbers (DeferredCounts, LabelledHistogram), looked up per route,
    // method and status without building a key string per request.
    const counted = new Map<string, Map<string, Map<number, () => void>>>()
    const timed = new Map<string, (seconds: number) => void>()
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched'
      const { method } = request
      const status = reply.statusCode
      let byMethod = counted.get(route)
      if (!byMethod) counted.set(route, (byMethod = new Map()))
      let byStatus = byMethod.get(method)
      if (!byStatus) byMethod.set(method, (byStatus = new Map()))
      let count = byStatus.get(status)
      if (!count) byStatus.set(status, (count = metrics.requestCounts.child({ route, method, status: String(status) })))
      count()
      let observe = timed.get(route)
      if (!observe) timed.set(route, (observe = metrics.requestDuration.child(route)))
      observe(reply.elapsedTime / 1000)
      if (reply.rejectReason) metrics.rejects.inc({ reason: reply.rejectReason })
      done()
    })
  },
  { name: 'ingest-request-metrics' },
)
