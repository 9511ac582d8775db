export {
  componentLifecycle,
  readiness,
  type Component,
  type ComponentHealth,
  type ComponentLifecycle,
  type Readiness,
} from './components.ts'
export { healthRoutes, type HealthRoutesOptions } from './health-routes.ts'
export type { Logger } from './logger.ts'
export { loggerOptions } from './logger.ts'
export { createMetricsRegistry, metricPrefix } from './metrics.ts'
export { processAlive } from './process.ts'
export { EXIT_CONFIG, runService, type RunnableService, type RunServiceOptions, type ServiceDefinition } from './run-service.ts'
