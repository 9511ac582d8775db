import { collectDefaultMetrics, Registry } from 'prom-client'

/** One registry per service instance (no global default registry: tests run several). */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ service })
  collectDefaultMetrics({ register: registry })
  return registry
}
