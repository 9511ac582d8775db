import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { timingSafeEqual } from 'node:crypto'
import type { Registry } from 'prom-client'
import { healthRoutes, type Component } from '@clickjoin/service-runtime'
import type { DeliveryQueue } from './delivery-queue.ts'

function tokensEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/**
 * The dispatcher's HTTP side: `/healthz`, `/readyz`, `/metrics`, and
 * `POST /admin/redeliver {"job_ids": [...]}` (Bearer ADMIN_TOKEN), which makes those
 * deliveries due now with a new retry period; `clickjoin redeliver` finds the IDs in
 * `postback_deliveries` and calls it.
 */
export async function buildDispatcherApp(
  deps: { queue: DeliveryQueue; registry: Registry; components: () => readonly Component[]; adminToken: string; onRedeliver: () => void },
  options: { logger: FastifyServerOptions['logger'] },
): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false, return503OnClosing: true })
  await app.register(healthRoutes, { components: deps.components, registry: deps.registry })
  app.post<{ Body: { job_ids: string[] } }>(
    '/admin/redeliver',
    {
      schema: {
        body: {
          type: 'object',
          required: ['job_ids'],
          additionalProperties: false,
          properties: { job_ids: { type: 'array', maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 400 } } },
        },
      },
      onRequest: async (request, reply) => {
        const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '')
        if (!match || !tokensEqual(match[1]!.trim(), deps.adminToken)) {
          return reply.code(401).header('www-authenticate', 'Bearer realm="clickjoin-admin"').send({
            error: 'unauthorized',
            message: 'send Authorization: Bearer <ADMIN_TOKEN>',
          })
        }
      },
    },
    async (request) => {
      const found = await deps.queue.redeliver(request.body.job_ids, Date.now())
      if (found.length > 0) deps.onRedeliver()
      const foundSet = new Set(found)
      return { redelivered: found, not_found: request.body.job_ids.filter((id) => !foundSet.has(id)) }
    },
  )
  await app.ready()
  return app
}
