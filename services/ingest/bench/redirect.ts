/**
 * Clicks/s of `GET /c/:id` with Kafka acknowledgements, next to a bare fastify app answering a
 * fixed 302, measured in the same run:
 *
 *   node --import tsx services/ingest/bench/redirect.ts
 *
 * Uses KAFKA_BROKERS / REDIS_URL when set, else starts a local Kafka and Redis. Both servers run
 * as their own processes (ingest through its real entry, src/server.ts); autocannon drives them
 * from this one. BENCH_CONNECTIONS (50), BENCH_DURATION_S (10), BENCH_WARMUP_S (3).
 */
import autocannon, { type Options, type Result } from 'autocannon'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, startStack, type ManagedProcess } from '@clickjoin/local-stack'
import { writeBenchResult, type BenchFigure } from '@clickjoin/local-stack/bench'
import { readTopic } from '@clickjoin/local-stack/testing'

const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const duration = Number(process.env['BENCH_DURATION_S'] ?? 10)
const warmup = Number(process.env['BENCH_WARMUP_S'] ?? 3)
const ingestDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const ADMIN_TOKEN = 'bench-admin-token'

async function waitHealthy(url: string, child: ManagedProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (!child.isRunning()) throw new Error(`${child.name} exited: ${await child.exited}`)
    const ok = await fetch(url).then((r) => r.ok, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not healthy in 60 s`)
}

/** CPU seconds a process has used so far (Linux /proc; NaN elsewhere). */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks of 1/100 s
  } catch {
    return NaN
  }
}

type Request = Pick<Options, 'method' | 'headers' | 'body'>

async function measure(name: string, url: string, server: ManagedProcess, request: Request = {}): Promise<Result> {
  if (warmup > 0) await autocannon({ url, connections, duration: warmup, ...request })
  const cpuBefore = await cpuSeconds(server.pid)
  const result = await autocannon({ url, connections, duration, ...request })
  const cores = ((await cpuSeconds(server.pid)) - cpuBefore) / duration
  const codes = Object.entries(result.statusCodeStats).map(([code, s]) => `${code}×${s.count}`).join(' ')
  console.log(
    `${name.padEnd(28)} ${result.requests.average.toFixed(0).padStart(7)} req/s   p50 ${result.latency.p50} ms   p99 ${result.latency.p99} ms   (${codes}; errors ${result.errors}, timeouts ${result.timeouts}; server CPU ${cores.toFixed(2)} cores)`,
  )
  return result
}

const dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-bench-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, log: (line) => console.log(`[stack] ${line}`) })
const children: ManagedProcess[] = []
try {
  const prefix = `bench_${Date.now().toString(36)}`
  const ingestPort = await freePort()
  const barePort = await freePort()
    // BENCH_CPU_PROFILE_DIR=<dir>: write a V8 CPU profile of the ingest process there.
  const profile = process.env['BENCH_CPU_PROFILE_DIR'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROFILE_DIR']}`] : []
  const ingest = startProcess('ingest', process.execPath, [...profile, '--import', 'tsx', 'src/server.ts'], {
    cwd: ingestDir,
    logFile: path.join(dataDir, 'ingest.log'),
    env: {
      ...process.env,
      ...stack.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      PORT: String(ingestPort),
      HOST: '127.0.0.1',
      KAFKA_TOPIC_PREFIX: `${prefix}_`,
      REDIS_KEY_PREFIX: `${prefix}:`,
      ADMIN_TOKEN,
      CLICK_ID_KEYS: '1:bench-click-id-key-0123456789abcdef0123456789',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
    },
  })
  children.push(ingest)
  const bare = startProcess('bare', process.execPath, ['--import', 'tsx', 'bench/bare-redirect.ts'], {
    cwd: ingestDir,
    logFile: path.join(dataDir, 'bare.log'),
    env: { ...process.env, PORT: String(barePort) },
  })
  children.push(bare)
  await Promise.all([
    waitHealthy(`http://127.0.0.1:${ingestPort}/readyz`, ingest),
    waitHealthy(`http://127.0.0.1:${barePort}/healthz`, bare),
  ])
  const put = await fetch(`http://127.0.0.1:${ingestPort}/admin/campaigns/bench`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ destination: 'https://shop.example/landing?click_id={click_id}&pub={pub}', status: 'active' }),
  })
  if (!put.ok) throw new Error(`campaign setup failed: ${put.status} ${await put.text()}`)

  console.log(`autocannon: ${connections} connections, ${duration} s (after ${warmup} s warm-up), ${stack.sources.kafka} Kafka, ${stack.sources.redis} Redis`)
  const bareResult = await measure('bare fastify fixed 302', `http://127.0.0.1:${barePort}/c/bench?pub=p1`, bare)
  const ingestResult = await measure('ingest GET /c/:id (acked)', `http://127.0.0.1:${ingestPort}/c/bench?pub=p1&sub1=s1`, ingest)
  console.log(`ratio ingest/bare: ${(ingestResult.requests.average / bareResult.requests.average).toFixed(2)}`)

  // Postbacks: JSON bodies with the partner's token, acknowledged by Kafka, vs a fixed 200.
  const partner = await fetch(`http://127.0.0.1:${ingestPort}/admin/partners/bench`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ secret: 'bench-partner-secret' }),
  })
  if (!partner.ok) throw new Error(`partner setup failed: ${partner.status} ${await partner.text()}`)
  const postback: Request = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ click_id: 'bench-click', partner: 'bench', token: 'bench-partner-secret', txn_id: 'o-1', revenue: '1.5' }),
  }
  const barePostback = await measure('bare fastify fixed 200', `http://127.0.0.1:${barePort}/postback`, bare, postback)
  const ingestPostback = await measure('ingest POST /postback (acked)', `http://127.0.0.1:${ingestPort}/postback`, ingest, postback)
  console.log(`ratio ingest/bare: ${(ingestPostback.requests.average / barePostback.requests.average).toFixed(2)}`)
  const figure = (measure: string, mine: Result, bareOne: Result, label: string): BenchFigure => ({
    measure,
    value: Math.round(mine.requests.average),
    unit: 'req/s',
    reference: { label, value: Math.round(bareOne.requests.average) },
    goal: { atLeast: 0.5, of: 'ratio' },
    detail: `p50 ${mine.latency.p50} ms, p99 ${mine.latency.p99} ms (bare: ${bareOne.latency.p50} / ${bareOne.latency.p99} ms)`,
  })
  await writeBenchResult('ingest', [
    figure('ingest GET /c/:id, Kafka-acked', ingestResult, bareResult, 'bare fastify 302'),
    figure('ingest POST /postback, Kafka-acked', ingestPostback, barePostback, 'bare fastify 200'),
  ])

  const metrics = await fetch(`http://127.0.0.1:${ingestPort}/metrics`).then((r) => r.text())
  const batchSum = Number(/^clickjoin_ingest_kafka_batch_messages_sum\S* (\S+)/m.exec(metrics)?.[1] ?? NaN)
  const batchCount = Number(/^clickjoin_ingest_kafka_batch_messages_count\S* (\S+)/m.exec(metrics)?.[1] ?? NaN)
  const ackSum = Number(/^clickjoin_ingest_kafka_batch_duration_seconds_sum\{[^}]*ok="true"[^}]*\} (\S+)/m.exec(metrics)?.[1] ?? NaN)
  console.log(
    `Kafka batches: ${batchCount}, ${(batchSum / batchCount).toFixed(1)} messages per batch, ` +
      `${((ackSum / batchCount) * 1000).toFixed(1)} ms from send to broker ack on average`,
  )
  const redirects = [ingestResult, ...(warmup > 0 ? [] : [])].reduce((n, r) => n + (r.statusCodeStats['302']?.count ?? 0), 0)
  const stored = (await readTopic(stack.kafkaBrokers, `${prefix}_clicks`, 120_000)).length
  console.log(`302 answers in the measured run: ${redirects}; clicks in Kafka (warm-up included): ${stored}`)
} finally {
  for (const child of children) await child.stop(10_000)
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
