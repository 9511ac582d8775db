/**
 * Rows/s the sink writes from Kafka next to rows/s of a direct @clickhouse/client insert of
 * the same rows, in the same run and on the same engine.
 *
 *   node --import tsx services/sink/bench/throughput.ts            # 200,000 clicks
 *   BENCH_ROWS=500000 KAFKA_BROKERS=127.0.0.1:9092 node --import tsx services/sink/bench/throughput.ts
 *
 * Uses KAFKA_BROKERS (else starts a throwaway local broker) and CLICKHOUSE_URL (else embedded
 * chDB in a temp dir).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Fastify from 'fastify'
import { clickHouseTarget, createClickHouse, insertRows } from '@clickjoin/clickhouse'
import { clickV1Contract, encodeEvent, topicNames, type ClickV1 } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics } from '@clickjoin/kafka'
import { startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { writeBenchResult } from '@clickjoin/local-stack/bench'
import { sinkConfigFromEnv } from '../src/config.ts'
import { clickRow } from '../src/rows.ts'
import { startSink } from '../src/sink.ts'

const rowsWanted = Number(process.env['BENCH_ROWS'] ?? 200_000)
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
}
const config = sinkConfigFromEnv(env)
const topics = topicNames(config.KAFKA_TOPIC_PREFIX)
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

// 1. Fill the topic first, so the sink is measured on reading and writing, not on the producer.
const producer = createBatchingProducer(kafka, { lingerMs: 5, maxQueuedMessages: rowsWanted + 1 })
await producer.start()
let produceMs = performance.now()
await Promise.all(clicks.map((c) => producer.send(topics.clicks, { key: c.click_id, value: encodeEvent(clickV1Contract, c) })))
produceMs = performance.now() - produceMs
await producer.stop()

// 2. The sink, in this process, from a new group: join, read everything, insert.
const target = clickHouseTarget(config.CLICKHOUSE_URL, config.CLICKHOUSE_DATA_DIR)
const clickhouse = createClickHouse(target)
const reader = createClickHouse(target)
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined }
const started = performance.now()
const sink = await startSink({ kafka, clickhouse, openSqlSession: undefined, healthApp: Fastify(), log: quiet }, config)
const count = async (table: string) => {
  const rs = await reader.query({ query: `SELECT count() AS n FROM ${config.CLICKHOUSE_DATABASE}.${table}`, format: 'JSONEachRow' })
  const [row] = await rs.json<{ n: string | number }>()
  return Number(row?.n ?? 0)
}
let firstRowAt: number | undefined
for (;;) {
  const n = await count('clicks')
  if (n > 0) firstRowAt ??= performance.now()
  if (n >= rowsWanted) break
  await new Promise((resolve) => setTimeout(resolve, 50))
}
const sinkDone = performance.now()
for (const step of sink.shutdownSteps()) if (step.name !== 'close ClickHouse') await step.run()

// 3. The same rows inserted directly, in batches of the sink's maximum, into a table of the same schema.
const db = config.CLICKHOUSE_DATABASE
await reader.command({ query: `CREATE TABLE ${db}.clicks_direct AS ${db}.clicks` })
const rows = clicks.map(clickRow)
const directStarted = performance.now()
for (let i = 0; i < rows.length; i += config.SINK_BATCH_MAX_ROWS) {
  await insertRows(reader, { table: `${db}.clicks_direct`, rows: rows.slice(i, i + config.SINK_BATCH_MAX_ROWS) })
}
const directMs = performance.now() - directStarted
const directRows = await count('clicks_direct')

const perSecond = (n: number, ms: number) => Math.round((n / ms) * 1000).toLocaleString('en-US')
const steadyMs = sinkDone - (firstRowAt ?? started)
console.log(
  [
    `rows: ${rowsWanted.toLocaleString('en-US')} clicks, ${partitions} partitions, ClickHouse ${target.kind}`,
    `produce to Kafka (batching producer):          ${perSecond(rowsWanted, produceMs)} rows/s`,
    `sink, Kafka → ClickHouse, incl. start + join:  ${perSecond(rowsWanted, sinkDone - started)} rows/s (${Math.round(sinkDone - started)} ms)`,
    `sink, first row stored → last row stored:      ${perSecond(rowsWanted, steadyMs)} rows/s (${Math.round(steadyMs)} ms)`,
    `direct @clickhouse/client insert, same rows:   ${perSecond(directRows, directMs)} rows/s (${Math.round(directMs)} ms)`,
  ].join('\n'),
)

await writeBenchResult('sink', [
  {
    measure: 'sink rows written from Kafka (first → last row stored)',
    value: Math.round((rowsWanted / steadyMs) * 1000),
    unit: 'rows/s',
    reference: { label: 'direct @clickhouse/client insert, same rows', value: Math.round((directRows / directMs) * 1000) },
    goal: { atLeast: 0.7, of: 'ratio' },
    detail: `${rowsWanted} clicks; incl. start and group join: ${perSecond(rowsWanted, sinkDone - started)} rows/s`,
  },
])

await reader.close()
await clickhouse.close()
await broker?.stop()
await rm(dataDir, { recursive: true, force: true })
