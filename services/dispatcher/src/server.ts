import { ConfigError } from '@clickjoin/config'
import { loggerOptions, onShutdownSignals } from '@clickjoin/service-runtime'
import { loadDispatcherConfig } from './config.ts'
import { createDispatcherService } from './service.ts'

// The only process entry of the dispatcher: configuration once, the service, listen, ordered shutdown.
let config
try {
  config = loadDispatcherConfig(process.env)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(78) // EX_CONFIG
  }
  throw err
}

const service = await createDispatcherService(config, { logger: loggerOptions('dispatcher', config.logLevel) })
onShutdownSignals(() => service.shutdownSteps(), service.app.log)
// Listening first: /healthz answers and /readyz says what is still missing while we connect.
await service.app.listen({ port: config.port, host: config.host })
await service.start()
service.app.log.info({ topicPrefix: config.topicPrefix, keyPrefix: config.redisKeyPrefix, allow: config.allowedNetworks.text }, 'dispatcher running')
