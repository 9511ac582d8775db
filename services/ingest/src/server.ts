import type { FastifyRequest } from 'fastify'
import { loggerOptions, runService } from '@clickjoin/service-runtime'
import { loadIngestConfig } from './config.ts'
import { createIngestService } from './service.ts'

// The only process entry of ingest.
await runService({
  name: 'ingest',
  loadConfig: loadIngestConfig,
  create: (config) =>
    createIngestService(config, {
      logger: {
        ...loggerOptions('ingest', config.logLevel),
        serializers: {
          // Partners may put their token in the query string: never write it to the logs.
          req: (request: FastifyRequest) => ({
            method: request.method,
            url: request.url.replace(/([?&]token=)[^&]*/gi, '$1***'),
            id: request.id,
            remoteAddress: request.ip,
          }),
        },
      },
    }),
})
