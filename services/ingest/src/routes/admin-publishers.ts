import { Type } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import {
  PostbackRule,
  PublisherId,
  PublisherInput,
  postbackUrlProblem,
  publisherFromInput,
  webhookSecretKey,
  type Publisher,
} from '@clickjoin/campaigns'
import type { IngestDeps } from '../app.ts'
import { sendError } from '../plugins/errors.ts'
import { errorResponses } from '../schemas/common.ts'

/** A publisher as the admin API shows it: whether it has a secret, never the secret. */
const PublisherView = Type.Object({
  id: Type.String(),
  has_secret: Type.Boolean(),
  postbacks: Type.Array(PostbackRule),
  updated_at: Type.Integer(),
})

const security = [{ adminToken: [] }]
const params = Type.Object({ id: PublisherId })

function publisherView(publisher: Publisher) {
  return { id: publisher.id, has_secret: publisher.secret !== null, postbacks: publisher.postbacks, updated_at: publisher.updated_at }
}

type Id = { Params: { id: string } }

/**
 * `PUT/GET /admin/publishers/:id` (SPEC §4): the publisher's postback rules and Standard
 * Webhooks secret, stored in Redis where the dispatcher reads them. Registered inside the
 * admin routes, behind their bearer-token check.
 */
export async function adminPublisherRoutes(app: FastifyInstance, deps: Pick<IngestDeps, 'publishers'>): Promise<void> {
  app.put<Id & { Body: PublisherInput }>(
    '/publishers/:id',
    {
      schema: {
        summary: 'Create or replace a publisher and its postback rules',
        security,
        params,
        body: PublisherInput,
        response: { 200: PublisherView, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const input = request.body
      for (const [i, rule] of input.postbacks.entries()) {
        const problem = postbackUrlProblem(rule.url)
        if (problem) return sendError(reply, 400, 'invalid_parameter', `postbacks.${i}.url: ${problem}`)
      }
      if (input.secret !== undefined && webhookSecretKey(input.secret) === undefined) {
        return sendError(reply, 400, 'invalid_parameter', 'secret: must be whsec_ followed by valid base64 of at least 16 bytes')
      }
      const publisher = publisherFromInput(request.params.id, input)
      await deps.publishers.putPublisher(publisher)
      return publisherView(publisher)
    },
  )

  app.get<Id>(
    '/publishers/:id',
    { schema: { summary: 'A publisher (without its secret)', security, params, response: { 200: PublisherView, ...errorResponses(400, 401, 404) } } },
    async (request, reply) => {
      const publisher = await deps.publishers.publisher(request.params.id)
      return publisher ? publisherView(publisher) : sendError(reply, 404, 'not_found', `publisher ${request.params.id} does not exist`)
    },
  )
}
