/**
 * Rows/s the sink writes from Kafka next to a direct insert of the same clicks, in the same run,
 * on the same engine and into the same schema (a freshly migrated database each run: same
 * table, projection and materialized view). BENCH_RUNS runs of each side (default 3),
 * interleaved; prints the median (min–max) of rows/s and of the CPU µs per row of this process
 * (process.cpuUsage: with embedded chDB that includes the engine's threads).
 *
 * Three sides:
 * - **sink**: a new consumer group reads the filled clicks topic; first row stored → last.
 * - **direct, the stage's work** (the reference of the goal): what the sink cannot avoid doing
 *   per click, without Kafka: decode the same message bytes (contract check, row), leave out
 *   clicks already stored (the same lookup, click-dedup.ts), insert, in blocks of the sink's
 *   largest size (SINK_BATCH_MAX_ROWS / SINK_BATCH_MAX_BYTES), one after the other.
 * - **insert only**: rows built beforehand, inserted in the same blocks (the engine's limit).
 *
 *   node --import tsx services/sink/bench/throughput.ts            # 200,000 clicks, 3 runs
 *   SINK_BATCH_QUIET=25ms node --import tsx services/sink/bench/throughput.ts   # another setting
 *   BENCH_ROWS=500000 BENCH_RUNS=5 KAFKA_BROKERS=127.0.0.1:9092 node --import tsx services/sink/bench/throughput.ts
 *
 * Uses KAFKA_BROKERS (else starts a throwaway local broker) and CLICKHOUSE_URL (else embedded
 * chDB in a temp dir; the CPU figure then covers ClickHouse too).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Fastify from 'fastify'
import { clickHouseTarget, createClickHouse, insertRows } from '@clickjoin/clickhouse'
import { clickV1Contract, decodeEvent, encodeEvent, topicNames, type ClickV1 } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics } from '@clickjoin/kafka'
import { startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { medianWithRange, writeBenchResult } from '@clickjoin/local-stack/bench'
import { withoutStoredClicks } from '../src/click-dedup.ts'
import { sinkConfigFromEnv, type SinkConfig } from '../src/config.ts'
import { migrateSchema } from '../src/migrations/index.ts'
import { clickRow } from '../src/rows.ts'
import { startSink } from '../src/sink.ts'
import { deduplicationTokenFor } from '../src/writer.ts'

const rowsWanted = Number(process.env['BENCH_ROWS'] ?? 200_000)
const runs = Number(process.env['BENCH_RUNS'] ?? 3)
const partitions = 6
const dataDir = await mkdtemp(path.join(tmpdir(), 'sink-bench-'))
let broker: KafkaBroker | undefined
const brokers = process.env['KAFKA_BROKERS']
  ? process.env['KAFKA_BROKERS'].split(',')
  : (broker = await startKafkaBroker({ dataDir: path.join(dataDir, 'kafka'), port: 0 })).brokers

const run = Date.now().toString(36)
const env = {
  KAFKA_BROKERS: brokers.join(','),
  KAFKA_TOPIC_PREFIX: `bench_${run}.`,
  KAFKA_TOPIC_PARTITIONS: String(partitions),
  SINK_CONSUMER_GROUP: `bench_${run}`,
  CLICKHOUSE_DATABASE: `bench_${run}`,
  CLICKHOUSE_DATA_DIR: path.join(dataDir, 'clickhouse'),
  ...(process.env['CLICKHOUSE_URL'] ? { CLICKHOUSE_URL: process.env['CLICKHOUSE_URL'] } : {}),
  PORT: '0',
  CLICKHOUSE_HTTP_PORT: '0',
  HOST: '127.0.0.1',
  // The sink's own knobs (SINK_BATCH_*, SINK_FETCH_*) from the environment, to compare settings.
  ...Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('SINK_BATCH_') || e[0].startsWith('SINK_FETCH_'))),
}
const baseConfig = sinkConfigFromEnv(env)
const topics = topicNames(baseConfig.KAFKA_TOPIC_PREFIX)
const kafka = createKafka({ brokers, clientId: 'sink-bench', log: () => undefined })
await ensureTopics(kafka, Object.values(topics).map((topic) => ({ topic, numPartitions: partitions })))

const clicks: ClickV1[] = Array.from({ length: rowsWanted }, (_, i) => ({
  v: 1,
  click_id: `bench${i.toString(36).padStart(8, '0')}x${run}`.slice(0, 32),
  ts: Date.UTC(2026, 10, 20) + i * 10,
  campaign_id: `campaign-${i % 50}`,
  publisher_id: `pub-${i % 500}`,
  sub1: `s1-${i % 1000}`,
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: '',
  source: 'search',
  creative: `cr-${i % 20}`,
  user_key: '',
  ip: `203.0.${i % 256}.0`,
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  referer: 'https://news.example/article',
  destination: `https://shop.example/land?cid=bench${i}`,
  is_bot: i % 50 === 0,
  is_duplicate: i % 33 === 0,
  window_seconds: 2_592_000,
  max_window_seconds: 2_592_000,
}))
const encoded = clicks.map((c) => encodeEvent(clickV1Contract, c))

// 1. Fill the topic first, so the sink is measured on reading and writing, not on the producer.
// All queued at once: no ack deadline that the last of them could miss on a loaded machine.
const producer = createBatchingProducer(kafka, { lingerMs: 5, maxQueuedMessages: rowsWanted + 1, ackTimeoutMs: 600_000 })
await producer.start()
let produceMs = performance.now()
await Promise.all(clicks.map((c, i) => producer.send(topics.clicks, { key: c.click_id, value: encoded[i]! })))
produceMs = performance.now() - produceMs
await producer.stop()

const target = clickHouseTarget(baseConfig.CLICKHOUSE_URL, baseConfig.CLICKHOUSE_DATA_DIR)
const clickhouse = createClickHouse(target)
const reader = createClickHouse(target)
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined }

async function count(db: string): Promise<number> {
  const rs = await reader.query({ query: `SELECT count() AS n FROM ${db}.clicks`, format: 'JSONEachRow' })
  const [row] = await rs.json<{ n: string | number }>()
  return Number(row?.n ?? 0)
}

/** A freshly migrated database: the same tables, projection and view as the sink's. */
async function freshDatabase(name: string): Promise<string> {
  await migrateSchema(clickhouse, {
    database: name,
    retentionDays: {
      clicks: baseConfig.CLICKS_TTL_DAYS,
      postbacks: baseConfig.POSTBACKS_TTL_DAYS,
      conversions: baseConfig.CONVERSIONS_TTL_DAYS,
      dead_letters: baseConfig.DEAD_LETTERS_TTL_DAYS,
    },
    log: quiet,
  })
  return name
}

interface Measure {
  rowsPerS: number
  cpuUsPerRow: number
  detail?: string
}

const cpuUs = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** The sink in this process, from a new group into a new database: first row stored → last. */
async function sinkRun(i: number): Promise<Measure> {
  const db = await freshDatabase(`bench_${run}_sink${i}`)
  const config: SinkConfig = { ...baseConfig, SINK_CONSUMER_GROUP: `bench_${run}_${i}`, CLICKHOUSE_DATABASE: db }
  const healthApp = Fastify()
  const started = performance.now()
  const cpuStarted = cpuUs()
  const sink = await startSink({ kafka, clickhouse, openSqlSession: undefined, healthApp, log: quiet }, config)
  let firstRowAt: number | undefined
  for (;;) {
    const n = await count(db)
    if (n > 0) firstRowAt ??= performance.now()
    if (n >= rowsWanted) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const done = performance.now()
  const cpu = cpuUs() - cpuStarted
  const metrics = (await healthApp.inject({ url: '/metrics' })).body
  const metric = (name: string) => Number(new RegExp(`^${name}\\{[^}]*table="clicks"[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1] ?? NaN)
  const inserts = metric('clickjoin_sink_insert_rows_count')
  const insertSeconds = metric('clickjoin_sink_insert_duration_seconds_sum')
  for (const step of sink.shutdownSteps()) await step.run()
  const steadyMs = done - (firstRowAt ?? started)
  return {
    rowsPerS: (rowsWanted / steadyMs) * 1000,
    cpuUsPerRow: cpu / rowsWanted,
    detail: `${inserts} inserts (${Math.round(rowsWanted / inserts)} rows each), ${Math.round((insertSeconds * 1000) / (done - started) * 100)} % of the time in inserts; incl. start + join ${Math.round((rowsWanted / (done - started)) * 1000)} rows/s`,
  }
}

/** Blocks as the writer cuts them at best: up to SINK_BATCH_MAX_ROWS rows or SINK_BATCH_MAX_BYTES. */
function blocks(): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = []
  let from = 0
  let bytes = 0
  for (let i = 0; i < encoded.length; i++) {
    if (i > from && (i - from >= baseConfig.SINK_BATCH_MAX_ROWS || bytes + encoded[i]!.length > baseConfig.SINK_BATCH_MAX_BYTES)) {
      out.push({ from, to: i })
      from = i
      bytes = 0
    }
    bytes += encoded[i]!.length
  }
  out.push({ from, to: encoded.length })
  return out
}

/** The stage's unavoidable work without Kafka: decode, leave out stored clicks, insert. */
async function directRun(i: number): Promise<Measure> {
  const db = await freshDatabase(`bench_${run}_direct${i}`)
  const started = performance.now()
  const cpuStarted = cpuUs()
  for (const { from, to } of blocks()) {
    const rows = []
    for (let k = from; k < to; k++) {
      const decoded = decodeEvent(clickV1Contract, encoded[k]!)
      if (!decoded.ok) throw new Error(decoded.reason)
      rows.push(clickRow(decoded.value))
    }
    const fresh = await withoutStoredClicks(clickhouse, db, rows)
    const token = deduplicationTokenFor('clicks', [{ topic: topics.clicks, partition: 0, firstOffset: String(from), lastOffset: String(to - 1) }])
    await insertRows(clickhouse, { table: `${db}.clicks`, rows: fresh, deduplicationToken: token })
  }
  const ms = performance.now() - started
  const cpu = cpuUs() - cpuStarted
  const stored = await count(db)
  if (stored !== rowsWanted) throw new Error(`direct run stored ${stored} of ${rowsWanted} rows`)
  return { rowsPerS: (rowsWanted / ms) * 1000, cpuUsPerRow: cpu / rowsWanted }
}

/** Rows built beforehand, inserted in the same blocks: the engine's own limit. */
async function insertOnlyRun(i: number): Promise<Measure> {
  const db = await freshDatabase(`bench_${run}_insert${i}`)
  const rows = clicks.map(clickRow)
  const started = performance.now()
  const cpuStarted = cpuUs()
  for (const { from, to } of blocks()) await insertRows(clickhouse, { table: `${db}.clicks`, rows: rows.slice(from, to) })
  const ms = performance.now() - started
  const cpu = cpuUs() - cpuStarted
  if ((await count(db)) !== rowsWanted) throw new Error('insert-only run lost rows')
  return { rowsPerS: (rowsWanted / ms) * 1000, cpuUsPerRow: cpu / rowsWanted }
}

// 2. The sides interleaved, so a change in the machine's load hits each alike.
const sides = { sink: [] as Measure[], direct: [] as Measure[], insertOnly: [] as Measure[] }
for (let i = 1; i <= runs; i++) {
  sides.sink.push(await sinkRun(i))
  sides.direct.push(await directRun(i))
  sides.insertOnly.push(await insertOnlyRun(i))
  console.log(
    `run ${i}: sink ${Math.round(sides.sink.at(-1)!.rowsPerS)} rows/s (${sides.sink.at(-1)!.detail}), ` +
      `direct ${Math.round(sides.direct.at(-1)!.rowsPerS)}, insert only ${Math.round(sides.insertOnly.at(-1)!.rowsPerS)}`,
  )
}

const median = (xs: number[]) => medianWithRange(xs).median
const fmt = (x: number) => Math.round(x).toLocaleString('en-US')
const spread = (xs: number[]) => medianWithRange(xs, fmt).text
const line = (label: string, ms: Measure[]) =>
  `${label.padEnd(44)} ${spread(ms.map((m) => m.rowsPerS)).padEnd(28)} ${spread(ms.map((m) => m.cpuUsPerRow))}`
const sinkRate = median(sides.sink.map((m) => m.rowsPerS))
const directRate = median(sides.direct.map((m) => m.rowsPerS))
const insertRate = median(sides.insertOnly.map((m) => m.rowsPerS))
console.log(
  [
    '',
    `rows: ${rowsWanted.toLocaleString('en-US')} clicks, ${partitions} partitions, ClickHouse ${target.kind}, ${runs} runs each, median (min–max)`,
    `produce to Kafka (batching producer): ${fmt((rowsWanted / produceMs) * 1000)} rows/s`,
    `${''.padEnd(44)} ${'rows/s'.padEnd(28)} CPU µs per row (this process)`,
    line('sink, Kafka → ClickHouse (first → last row)', sides.sink),
    line('direct: decode + stored-click lookup + insert', sides.direct),
    line('insert only (rows built beforehand)', sides.insertOnly),
    `sink / direct ${(sinkRate / directRate).toFixed(2)} (goal ≥ 0.8); sink / insert only ${(sinkRate / insertRate).toFixed(2)}`,
    `sink runs: ${sides.sink.map((m) => m.detail).join('; ')}`,
  ].join('\n'),
)

await writeBenchResult('sink', [
  {
    measure: 'sink rows written from Kafka (first → last row stored), median of 3',
    value: Math.round(sinkRate),
    unit: 'rows/s',
    reference: { label: 'direct: decode + stored-click lookup + insert, same rows', value: Math.round(directRate) },
    goal: { atLeast: 0.8, of: 'ratio' },
    detail:
      `${rowsWanted} clicks, ${runs} runs; sink ${spread(sides.sink.map((m) => m.rowsPerS))} rows/s, ` +
      `${spread(sides.sink.map((m) => m.cpuUsPerRow))} CPU µs/row; direct ${spread(sides.direct.map((m) => m.rowsPerS))}, ` +
      `${spread(sides.direct.map((m) => m.cpuUsPerRow))} µs/row; insert only ${spread(sides.insertOnly.map((m) => m.rowsPerS))}, ` +
      `${spread(sides.insertOnly.map((m) => m.cpuUsPerRow))} µs/row`,
  },
])

await reader.close()
await clickhouse.close()
await broker?.stop()
await rm(dataDir, { recursive: true, force: true })
