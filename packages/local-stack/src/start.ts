import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { z } from 'zod'
import { ConfigError, parseEnv, port } from '@clickjoin/config'
import { defaultDataDir } from './paths.ts'
import { startPipeline, type Pipeline } from './services.ts'
import { startStack, type RunningStack } from './stack.ts'

/**
 * `npm start`: Kafka, Redis, the services and embedded ClickHouse, with data under `.data/`;
 * seeds the demo campaign and partner; Ctrl-C / SIGTERM stops the services first (ingest,
 * then dispatcher, attributor and sink, each flushing what it holds), then Kafka and Redis.
 */
const StartEnv = z.object({
  /** Where Kafka, Redis and ClickHouse keep their data. */
  CLICKJOIN_DATA_DIR: z.string().default(defaultDataDir),
  KAFKA_PORT: port(9092),
  REDIS_PORT: port(6379),
  INGEST_PORT: port(8080),
  ATTRIBUTOR_PORT: port(8081),
  SINK_PORT: port(8082),
  DISPATCHER_PORT: port(8083),
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
    process.exit(78) // EX_CONFIG, like every service
  }
  throw err
}
const dataDir = path.resolve(config.CLICKJOIN_DATA_DIR)
const pidFile = path.join(dataDir, 'stack.pids')

/**
 * Whether a PID from the last run's PID file is still one of ours, not a reused PID: Kafka has
 * the data dir on its command line, Redis runs inside it (redis-server rewrites its command
 * line but chdirs to its --dir), the services have it in their environment.
 */
async function isOurs(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined)
  if (cmdline === undefined) return false
  if (cmdline.includes(dataDir)) return true
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '')
  if (cwd === dataDir || cwd.startsWith(`${dataDir}/`)) return true
  const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
  return environ.split('\0').some((entry) => entry.startsWith('CLICKJOIN_DATA_DIR=') && entry.slice(19) === dataDir)
}

async function exited(pid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs
  while (Date.now() < deadline) {
    if ((await readFile(`/proc/${pid}/cmdline`).catch(() => null)) === null) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

/**
 * A run killed with -9 leaves its watcher to stop its children; should any still hold our
 * ports (the watcher killed too), stop those that are ours: services first (last in the
 * file), then Redis and Kafka, each SIGTERM then SIGKILL after 30 s.
 */
async function stopLeftovers(): Promise<void> {
  const text = await readFile(pidFile, 'utf8').catch(() => '')
  const pids = text.split('\n').map(Number).filter((n) => n > 0).reverse()
  for (const pid of pids) {
    if (!(await isOurs(pid))) continue
    log(`stopping leftover process ${pid} from a previous run`)
    try {
      process.kill(pid, 'SIGTERM')
    } catch {
      continue
    }
    if (!(await exited(pid, 30_000))) {
      log(`process ${pid} did not stop within 30 s; killing it`)
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
      await exited(pid, 5_000)
    }
  }
  await rm(pidFile, { force: true })
}

/**
 * A watcher outside our process group that outlives a `kill -9` of us: once we are gone it
 * stops what the PID file lists, last first (services, then Redis, then Kafka). A clean stop
 * removes the file first, so the watcher then has nothing to do.
 */
function startOrphanWatcher(): void {
  const script = `
    while kill -0 "$1" 2>/dev/null; do sleep 1; done
    [ -f "$2" ] || exit 0
    for pid in $(tac "$2"); do
      kill -TERM "$pid" 2>/dev/null || continue
      i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
      kill -KILL "$pid" 2>/dev/null
    done
    rm -f "$2"`
  const watcher = spawn('sh', ['-c', script, 'clickjoin-watch', String(process.pid), pidFile], { detached: true, stdio: 'ignore' })
  watcher.unref()
}

async function writePids(): Promise<void> {
  const pids = [...(stack?.pids ?? []), ...(pipeline?.services.map((s) => s.process.pid) ?? [])]
  await writeFile(pidFile, pids.join('\n') + '\n')
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

/** The demo campaign and partner, each created only when missing: an operator's changes stay. */
async function seedDemo(ingestUrl: string): Promise<void> {
  const headers = { authorization: `Bearer ${config.ADMIN_TOKEN}`, 'content-type': 'application/json' }
  const putIfMissing = async (what: string, body: object) => {
    const existing = await fetch(`${ingestUrl}/admin/${what}`, { headers })
    if (existing.status === 200) return
    if (existing.status !== 404) throw new Error(`reading ${what} failed: ${existing.status} ${await existing.text()}`)
    const res = await fetch(`${ingestUrl}/admin/${what}`, { method: 'PUT', headers, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`seeding ${what} failed: ${res.status} ${await res.text()}`)
    log(`seeded ${what}`)
  }
  await putIfMissing('campaigns/demo', {
    destination: 'https://shop.example.com/landing?cid={click_id}&pub={pub}&sub1={sub1}',
    status: 'active',
    payout: { type: 'cpa', amount: '2.50' },
    pixel_enabled: true,
  })
  await putIfMissing('partners/demo', { secret: 'demo-secret' })
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
  startOrphanWatcher()
  stack = await startStack({ dataDir, kafkaPort: config.KAFKA_PORT, redisPort: config.REDIS_PORT, log })
  await writePids()

  log('starting sink, attributor, dispatcher and ingest')
  pipeline = await startPipeline({
    env: {
      ...stack.env,
      NODE_ENV: process.env['NODE_ENV'] ?? 'development',
      ADMIN_TOKEN: config.ADMIN_TOKEN,
      CLICK_ID_KEYS: await clickIdKeys(),
      CLICKHOUSE_DATA_DIR: path.join(dataDir, 'clickhouse'),
      // Marks the services as this data dir's, for stopLeftovers.
      CLICKJOIN_DATA_DIR: dataDir,
    },
    logDir: path.join(dataDir, 'logs'),
    ports: {
      ingest: config.INGEST_PORT,
      attributor: config.ATTRIBUTOR_PORT,
      sink: config.SINK_PORT,
      dispatcher: config.DISPATCHER_PORT,
      clickhouseHttp: config.CLICKHOUSE_HTTP_PORT,
    },
    supervise: { log, onRestart: () => void writePids().catch(() => undefined) },
  })
  await writePids()
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
