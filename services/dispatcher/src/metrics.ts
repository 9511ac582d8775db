import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

/** The dispatcher's own metrics, registered on the service's registry. */
export function createDispatcherMetrics(registry: Registry) {
  return {
    attempts: new Counter({
      name: 'dispatcher_deliveries_total',
      help: 'Delivery attempts by result: delivered, retried (will be tried again), failed (given up), refused (SSRF)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'dispatcher_delivery_duration_seconds',
      help: 'Time of one call to a publisher, by host and result',
      labelNames: ['host', 'result'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    deferred: new Counter({
      name: 'dispatcher_deferred_total',
      help: 'Due deliveries put back unattempted: the host was busy (per-host limit) or its circuit open',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    enqueued: new Counter({
      name: 'dispatcher_jobs_enqueued_total',
      help: 'Deliveries recorded from outcomes (one per matching rule and conversion version)',
      registers: [registry],
    }),
    outcomes: new Counter({
      name: 'dispatcher_outcomes_total',
      help: 'Outcomes read, by what they led to: deliveries, no_rules, not_attributed, dead_letter',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({ name: 'dispatcher_calls_in_flight', help: 'Calls to publishers in flight', registers: [registry] }),
    openCircuits: new Gauge({ name: 'dispatcher_open_circuits', help: 'Hosts whose circuit is open', registers: [registry] }),
  }
}
export type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>
