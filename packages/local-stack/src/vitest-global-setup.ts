import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startStack, type RunningStack } from './stack.ts'

let stack: RunningStack | undefined
let dataDir: string | undefined

/**
 * Starts one Kafka and one Redis for the whole integration run and hands their endpoints to
 * the test workers through the environment (workers are forked after this runs). Tests
 * isolate themselves by unique topic names, key prefixes and databases.
 */
export async function setup(): Promise<void> {
  dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-test-'))
  const started = Date.now()
  stack = await startStack({
    dataDir,
    kafkaPort: 0,
    redisPort: 0,
    preferContainers: true,
    log: (line) => console.log(`[local-stack] ${line}`),
  })
  Object.assign(process.env, stack.env, { CLICKJOIN_TEST_DATA_DIR: dataDir })
  console.log(
    `[local-stack] ready in ${Date.now() - started} ms: kafka=${stack.kafkaBrokers.join(',')} (${stack.sources.kafka}), ` +
      `redis=${stack.redisUrl} (${stack.sources.redis}), clickhouse=${stack.clickhouseUrl ?? 'embedded chDB'} (${stack.sources.clickhouse})`,
  )
}

export async function teardown(): Promise<void> {
  await stack?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
}
