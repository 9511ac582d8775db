import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { readiness, type Component } from './components.ts'

export interface HealthRoutesOptions {
  components: () => readonly Component[]
  registry: Registry
}

/**
 * `GET /healthz` (the process is alive), `GET /readyz` (its Kafka/Redis/ClickHouse answer:
 * 200 `ready`, or 200 `degraded` when a component works around a failure; else 503 with what is wrong), `GET /metrics` (Prometheus text).
 */
export const healthRoutes = fp<HealthRoutesOptions>(
  async (app: FastifyInstance, opts) => {
    app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }))
    app.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
      const r = await readiness(opts.components())
      // Degraded is still ready (200): the service answers, e.g. ingest journals while Kafka is away.
      const status = !r.ok ? 'not_ready' : r.degraded ? 'degraded' : 'ready'
      return reply.code(r.ok ? 200 : 503).send({ status, components: r.components })
    })
    app.get('/metrics', { logLevel: 'warn' }, async (_req, reply) => {
      return reply.header('content-type', opts.registry.contentType).send(await opts.registry.metrics())
    })
  },
  { name: 'clickjoin-health-routes' },
)
