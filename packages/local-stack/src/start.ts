import { mkdir, readFile, writeFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { startStack } from './stack.ts'
import { defaultDataDir } from './paths.ts'

/**
 * `npm start`: the local pipeline with its data under `.data/`. Kafka and Redis run as child
 * processes unless KAFKA_BROKERS / REDIS_URL point elsewhere; Ctrl-C / SIGTERM stops
 * everything in order.
 */
const dataDir = process.env['CLICKJOIN_DATA_DIR'] ?? defaultDataDir
const kafkaPort = Number(process.env['KAFKA_PORT'] ?? 9092)
const redisPort = Number(process.env['REDIS_PORT'] ?? 6379)
const pidFile = path.join(dataDir, 'stack.pids')
const log = (line: string) => console.log(`[clickjoin] ${line}`)

/** A previous run that was killed with -9 may have left its children; they hold our ports. */
async function stopLeftovers(): Promise<void> {
  const text = await readFile(pidFile, 'utf8').catch(() => '')
  for (const pid of text.split('\n').map(Number).filter((n) => n > 0)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (!cmdline.includes(dataDir)) continue // not ours (the pid was reused)
    log(`stopping leftover process ${pid} from a previous run`)
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      continue
    }
    for (let i = 0; i < 100 && (await readFile(`/proc/${pid}/cmdline`).catch(() => null)); i++) {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  await rm(pidFile, { force: true })
}

await mkdir(dataDir, { recursive: true })
await stopLeftovers()
const stack = await startStack({ dataDir, kafkaPort, redisPort, log })
await writeFile(pidFile, stack.pids.join('\n') + '\n')

log(`Kafka:      ${stack.kafkaBrokers.join(',')} (${stack.sources.kafka})`)
log(`Redis:      ${stack.redisUrl} (${stack.sources.redis})`)
log(`ClickHouse: ${stack.clickhouseUrl ?? `embedded chDB under ${path.join(dataDir, 'clickhouse')}`} (${stack.sources.clickhouse})`)
log('running; press Ctrl-C to stop')

let stopping = false
async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  log(`${signal}: stopping`)
  await stack.stop()
  await rm(pidFile, { force: true })
  log('stopped')
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))
