import { collectDefaultMetrics, Registry } from 'prom-client'

/**
 * One registry per service instance (no global default registry: tests run several). Every
 * metric of a service is named `clickjoin_<service>_…`, the process and Node.js defaults
 * included (`clickjoin_sink_process_cpu_seconds_total`), so one scrape config and one naming
 * rule cover them all; the `service` label is on every sample as well.
 */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry, prefix: metricPrefix(service) })
  return registry
}

/** `clickjoin_<service>_`: the start of every metric name of that service. */
export function metricPrefix(service: string): string {
  return `clickjoin_${service.replace(/[^a-zA-Z0-9_]/g, '_')}_`
}
