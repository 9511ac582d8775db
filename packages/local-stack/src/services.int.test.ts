import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { freePort } from './ports.ts'
import { startService } from './services.ts'
import { tempDir } from './testing.ts'

describe('startService', () => {
  it('names the service, why it is not ready and where its log is when it never gets ready', async () => {
    const dir = await tempDir('never-ready')
    const logDir = path.join(dir, 'logs')
    const port = await freePort()
    const env = {
      ...process.env,
      // Nothing listens on port 1: the sink cannot create its topics and gives up.
      KAFKA_BROKERS: '127.0.0.1:1',
      CLICKHOUSE_URL: '',
      CLICKHOUSE_DATA_DIR: path.join(dir, 'clickhouse'),
      CLICKHOUSE_HTTP_PORT: String(await freePort()),
      HOST: '127.0.0.1',
    }
    const error = await startService({ name: 'sink', port }, { env, logDir, readyTimeoutMs: 90_000 }).then(
      () => undefined,
      (err: unknown) => err as Error,
    )
    expect(error).toBeInstanceOf(Error)
    expect(error!.message).toMatch(/^sink did not become ready within 90 s/)
    expect(error!.message).toContain(`its log: ${path.join(logDir, 'sink.log')}`)
    expect(error!.message).toMatch(/sink exited \(1\)/)
  })
})
