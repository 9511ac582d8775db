import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { metricPrefix } from '@clickjoin/service-runtime'

/** `clickjoin_dispatcher_`: every metric of this service (the event consumer's included). */
export const DISPATCHER_METRIC_PREFIX = metricPrefix('dispatcher')

/** The dispatcher's own metrics, registered on the service's registry. */
export function createDispatcherMetrics(registry: Registry) {
  const name = (suffix: string) => `${DISPATCHER_METRIC_PREFIX}${suffix}`
  return {
    attempts: new Counter({
      name: name('deliveries_total'),
      help: 'Delivery attempts by result: delivered, retried (will be tried again), failed (given up), refused (SSRF)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: name('delivery_duration_seconds'),
      help: 'Time of one call to a publisher, by host and result',
      labelNames: ['host', 'result'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    deferred: new Counter({
      name: name('deferred_total'),
      help: 'Due deliveries put back unattempted: the host was busy (per-host limit) or its circuit open',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    enqueued: new Counter({
      name: name('jobs_enqueued_total'),
      help: 'Deliveries recorded from outcomes (one per matching rule and conversion version)',
      registers: [registry],
    }),
    outcomes: new Counter({
      name: name('outcomes_total'),
      help: 'Outcomes decoded, by what they led to: deliveries, no_rules, not_attributed',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    inFlight: new Gauge({ name: name('calls_in_flight'), help: 'Calls to publishers in flight', registers: [registry] }),
    openCircuits: new Gauge({ name: name('open_circuits'), help: 'Hosts whose circuit is open', registers: [registry] }),
  }
}
export type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>
