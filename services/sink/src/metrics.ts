import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export interface SinkMetrics {
  rowsWritten: Counter<'table'>
  insertRows: Histogram<'table'>
  insertSeconds: Histogram<'table'>
  insertFailures: Counter<'table'>
  rowsRefused: Counter<'table'>
  pendingRows: Gauge
  sqlQuerySeconds: Histogram<'ok'>
}

export function createSinkMetrics(
  registry: Registry,
  read: { pendingRows(): number },
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
    rowsRefused: new Counter({
      name: 'clickjoin_sink_rows_refused_total',
      help: 'Rows ClickHouse refused for their content, set aside in dead_letters',
      labelNames: ['table'],
      registers: [registry],
    }),
    sqlQuerySeconds: new Histogram({
      name: 'clickjoin_sink_sql_http_query_duration_seconds',
      help: 'Queries answered over SQL over HTTP (embedded mode): time in the engine, by success',
      labelNames: ['ok'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
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
  }
}
