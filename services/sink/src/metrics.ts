import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface SinkMetrics {
  rowsWritten: Counter<'table'>
  insertRows: Histogram<'table'>
  insertSeconds: Histogram<'table'>
  insertFailures: Counter<'table'>
  deadLetters: Counter<'topic'>
  pendingRows: Gauge
  consumerLag: Gauge<'topic'>
}

export function createSinkMetrics(
  registry: Registry,
  read: { pendingRows(): number; consumerLag(): Promise<Map<string, number>> },
): SinkMetrics {
  return {
    rowsWritten: new Counter({
      name: 'clickjoin_sink_rows_written_total',
      help: 'Rows ClickHouse acknowledged, per table',
      labelNames: ['table'],
      registers: [registry],
    }),
    insertRows: new Histogram({
      name: 'clickjoin_sink_insert_rows',
      help: 'Rows per insert (batch size)',
      labelNames: ['table'],
      buckets: [1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000],
      registers: [registry],
    }),
    insertSeconds: new Histogram({
      name: 'clickjoin_sink_insert_duration_seconds',
      help: 'Insert latency until ClickHouse acknowledged',
      labelNames: ['table'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    insertFailures: new Counter({
      name: 'clickjoin_sink_insert_failures_total',
      help: 'Failed insert attempts (each is retried)',
      labelNames: ['table'],
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'clickjoin_sink_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, per source topic',
      labelNames: ['topic'],
      registers: [registry],
    }),
    pendingRows: new Gauge({
      name: 'clickjoin_sink_pending_rows',
      help: 'Rows consumed but not yet acknowledged by ClickHouse',
      registers: [registry],
      collect() {
        this.set(read.pendingRows())
      },
    }),
    consumerLag: new Gauge({
      name: 'clickjoin_sink_consumer_lag_messages',
      help: 'Messages in the topic after the sink group’s committed offset, per topic',
      labelNames: ['topic'],
      registers: [registry],
      async collect() {
        // A scrape must not hang on an unreachable broker: no lag figure then.
        const timeout = new Promise<Map<string, number>>((resolve) => setTimeout(() => resolve(new Map()), 2_000).unref())
        const lag = await Promise.race([read.consumerLag(), timeout]).catch(() => new Map<string, number>())
        for (const [topic, messages] of lag) this.set({ topic }, messages)
      },
    }),
  }
}
