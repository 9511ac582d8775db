import { runService } from '@clickjoin/service-runtime'
import { sinkConfigFromEnv } from './config.ts'
import { createSinkService } from './sink.ts'

// The only process entry of the sink.
await runService({
  name: 'sink',
  loadConfig: sinkConfigFromEnv,
  create: (config) => createSinkService(config),
  shutdownDeadlineMs: (config) => config.SHUTDOWN_DEADLINE,
})
