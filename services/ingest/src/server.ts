import type { FastifyRequest } from 'fastify'
import { ConfigError } from '@clickjoin/config'
import { loggerOptions, onShutdownSignals } from '@clickjoin/service-runtime'
import { loadIngestConfig } from './config.ts'
import { createIngestService } from './service.ts'

// The only process entry of ingest: configuration once, the service, listen, ordered shutdown.
let config
try {
  config = loadIngestConfig(process.env)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(78) // EX_CONFIG
  }
  throw err
}

const logger = {
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
}
const service = await createIngestService(config, { logger })
onShutdownSignals(() => service.shutdownSteps(), service.app.log)
await service.app.listen({ port: config.port, host: config.host })
