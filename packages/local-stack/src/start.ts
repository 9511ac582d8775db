import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { z } from 'zod'
import { ConfigError, parseEnv, port } from '@clickjoin/config'
import { defaultDataDir } from './paths.ts'
import { startPipeline, type Pipeline } from './services.ts'
import { startStack, type RunningStack } from './stack.ts'

/**
 * `npm start`: Kafka, Redis, the services and embedded ClickHouse, with data under `.data/`;
 * seeds the demo campaign and partner; Ctrl-C / SIGTERM stops the services first (ingest,
 * then attributor, then sink, each flushing what it holds), then Kafka and Redis.
 */
const StartEnv = z.object({
  /** Where Kafka, Redis and ClickHouse keep their data. */
  CLICKJOIN_DATA_DIR: z.string().default(defaultDataDir),
  KAFKA_PORT: port(9092),
  REDIS_PORT: port(6379),
  INGEST_PORT: port(8080),
  ATTRIBUTOR_PORT: port(8081),
  SINK_PORT: port(8082),
  /** Embedded ClickHouse's SQL over HTTP, answered by the sink. */
  CLICKHOUSE_HTTP_PORT: port(8123),
  /** Admin API token; development default. */
  ADMIN_TOKEN: z.string().min(8).default('dev-admin-token'),
})

const log = (line: string) => console.log(`[clickjoin]   ${line}`)

let config: z.output<typeof StartEnv>
try {
  config = parseEnv(StartEnv)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(2)
  }
  throw err
}
const dataDir = path.resolve(config.CLICKJOIN_DATA_DIR)
const pidFile = path.join(dataDir, 'stack.pids')

/** A run killed with -9 may have left children holding our ports: stop those that are ours. */
async function stopLeftovers(): Promise<void> {
  const text = await readFile(pidFile, 'utf8').catch(() => '')
  for (const pid of text.split('\n').map(Number).filter((n) => n > 0)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (!cmdline.includes(dataDir) && !cmdline.includes('services/')) continue // the pid was reused
    log(`stopping leftover process ${pid} from a previous run`)
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      continue
    }
    for (let i = 0; i < 300 && (await readFile(`/proc/${pid}/cmdline`).catch(() => null)); i++) {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  await rm(pidFile, { force: true })
}

/** The click-ID key is generated once per data dir: every service must verify with the same key. */
async function clickIdKeys(): Promise<string> {
  if (process.env['CLICK_ID_KEYS']) return process.env['CLICK_ID_KEYS']
  const file = path.join(dataDir, 'click-id-keys')
  const existing = (await readFile(file, 'utf8').catch(() => '')).trim()
  if (existing) return existing
  const keys = `1:${randomBytes(32).toString('base64url')}`
  await writeFile(file, `${keys}\n`, { mode: 0o600 })
  return keys
}

async function seedDemo(ingestUrl: string): Promise<void> {
  const headers = { authorization: `Bearer ${config.ADMIN_TOKEN}`, 'content-type': 'application/json' }
  const put = async (what: string, body: object) => {
    const res = await fetch(`${ingestUrl}/admin/${what}`, { method: 'PUT', headers, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`seeding ${what} failed: ${res.status} ${await res.text()}`)
  }
  await put('campaigns/demo', {
    destination: 'https://shop.example.com/landing?cid={click_id}&pub={pub}&sub1={sub1}',
    status: 'active',
    payout: { type: 'cpa', amount: '2.50' },
    pixel_enabled: true,
  })
  await put('partners/demo', { secret: 'demo-secret' })
}

let pipeline: Pipeline | undefined
let stack: RunningStack | undefined
let stopping = false

async function stopAll(): Promise<void> {
  // The services first (edge first, so nothing new arrives while the rest drains), then Kafka and Redis.
  await pipeline?.stop()
  await stack?.stop()
  await rm(pidFile, { force: true })
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  log(`${signal}: stopping`)
  await stopAll()
  log('stopped')
  process.exit(0)
}
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGTERM', () => void shutdown('SIGTERM'))

try {
  await mkdir(dataDir, { recursive: true })
  await stopLeftovers()
  stack = await startStack({ dataDir, kafkaPort: config.KAFKA_PORT, redisPort: config.REDIS_PORT, log })
  const pids = [...stack.pids]
  await writeFile(pidFile, pids.join('\n') + '\n')

  log('starting sink, attributor and ingest')
  pipeline = await startPipeline({
    env: {
      ...stack.env,
      NODE_ENV: process.env['NODE_ENV'] ?? 'development',
      ADMIN_TOKEN: config.ADMIN_TOKEN,
      CLICK_ID_KEYS: await clickIdKeys(),
      CLICKHOUSE_DATA_DIR: path.join(dataDir, 'clickhouse'),
    },
    logDir: path.join(dataDir, 'logs'),
    ports: {
      ingest: config.INGEST_PORT,
      attributor: config.ATTRIBUTOR_PORT,
      sink: config.SINK_PORT,
      clickhouseHttp: config.CLICKHOUSE_HTTP_PORT,
    },
  })
  await writeFile(pidFile, [...pids, ...pipeline.services.map((s) => s.process.pid)].join('\n') + '\n')
  const ingestUrl = pipeline.ingestUrl
  const sqlUrl = pipeline.sqlUrl
  await seedDemo(ingestUrl)

  log('')
  log(`Kafka       ${stack.kafkaBrokers.join(',')} (${stack.sources.kafka})`)
  log(`Redis       ${stack.redisUrl} (${stack.sources.redis})`)
  log(`ClickHouse  ${stack.clickhouseUrl ?? `embedded, data in ${path.join(dataDir, 'clickhouse')}`}`)
  for (const s of pipeline.services) log(`${s.name.padEnd(11)} http://127.0.0.1:${s.port}  (/healthz /readyz /metrics)`)
  log(`SQL         ${sqlUrl}/?query=...`)
  log('')
  log('Demo campaign `demo` and partner `demo` (secret demo-secret) are set up. Try:')
  console.log(`
  # a click: 302 to the landing page with the click ID
  curl -i '${ingestUrl}/c/demo?pub=pub1&sub1=abc'

  # a click in JSON mode, then a postback for it
  CID=$(curl -s -H 'Accept: application/json' '${ingestUrl}/c/demo?pub=pub1' | sed -E 's/.*"click_id":"([^"]+)".*/\\1/')
  curl -s "${ingestUrl}/postback?click_id=$CID&partner=demo&token=demo-secret&txn_id=order-$RANDOM&revenue=12.50"

  # the result in ClickHouse
  curl -s '${sqlUrl}/?query=SELECT+*+FROM+clickjoin.conversions+FINAL+FORMAT+PrettyCompact'
`)
  log('running; press Ctrl-C to stop')
} catch (err) {
  console.error(`[clickjoin]   start failed: ${err instanceof Error ? err.message : String(err)}`)
  await stopAll()
  process.exit(1)
}
