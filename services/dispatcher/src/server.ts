import { loggerOptions, runService } from '@clickjoin/service-runtime'
import { loadDispatcherConfig } from './config.ts'
import { createDispatcherService } from './service.ts'

// The only process entry of the dispatcher.
await runService({
  name: 'dispatcher',
  loadConfig: loadDispatcherConfig,
  create: (config) => createDispatcherService(config, { logger: loggerOptions('dispatcher', config.logLevel) }),
})
