/**
 * Throughput of one attributor, each figure next to a "durable limit" measured in the same run:
 * a bare loop that reads the same topic and writes the same number of keys and bytes to the
 * same Redis (same appendfsync always), one pipeline per batch.
 *
 *   node --import tsx services/attributor/bench/throughput.ts
 *
 * 1. N clicks are produced; the attributor records them all (clicks/s stored), timed from
 *    joining its group until the last click is in Redis. The click durable limit: a bare
 *    eachBatch loop over the clicks topic, one HSET per click (same field and value sizes) in
 *    one pipeline per batch.
 * 2. N conversions (all attributable, with a txn_id) are produced; the attributor decides all
 *    (conversions/s, until N outcomes are acknowledged by Kafka). The conversion durable limit:
 *    a bare loop over the conversions topic writing per message what a decision writes (the
 *    postback record, the conversion hash with its outcome JSON, an outbox entry), one
 *    pipeline per batch.
 *
 * Uses KAFKA_BROKERS / REDIS_URL when set, else starts a local Kafka and Redis. The attributor
 * runs with its sink (the cold tier) as in production. BENCH_CONVERSIONS (default 50000) sets N.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis, type ChainableCommander } from 'ioredis'
import type { Registry } from 'prom-client'
import { createKafka, type KafkaMessage } from '@clickjoin/kafka'
import { startStack } from '@clickjoin/local-stack'
import { writeBenchResult } from '@clickjoin/local-stack/bench'
import { uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { clicksInRedis, createEventWriter, createWorld, makeClick, makePostback, putCampaigns, startAttributor, type TestWorld } from '../test/harness.ts'
import { outcomeCount, workloadCampaign } from '../test/workload.ts'

const N = Number(process.env['BENCH_CONVERSIONS'] ?? 50_000)
const CHUNK = 5_000

const dataDir = await mkdtemp(path.join(tmpdir(), 'attributor-bench-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, preferContainers: false, log: () => undefined })
Object.assign(process.env, stack.env)

/** Reads `topic` start to end with a bare eachBatch loop, writing one pipeline per batch. */
async function durableLimit(world: TestWorld, topic: string, writeBatch: (pipeline: ChainableCommander, messages: KafkaMessage[]) => void): Promise<number> {
  const kafka = createKafka({ brokers: world.brokers, clientId: 'bench-bare', log: () => undefined })
  const consumer = kafka.consumer({ groupId: uniqueName('bench-bare'), maxBytesPerPartition: 4 * 1024 * 1024 })
  const redis = new Redis(world.redis.url!)
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let read = 0
  let firstAt = 0
  let doneAt = 0
  await consumer.run({
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch }) => {
      if (firstAt === 0) firstAt = performance.now()
      const pipeline = redis.pipeline()
      writeBatch(pipeline, batch.messages)
      await pipeline.exec()
      read += batch.messages.length
      if (read >= N && doneAt === 0) doneAt = performance.now()
    },
  })
  await waitFor(() => read, (n) => n >= N, 300_000, `bare loop over ${topic}`)
  await consumer.disconnect()
  redis.disconnect()
  return N / ((doneAt - firstAt) / 1000)
}

async function counter(running: { registry: Registry }, name: string): Promise<number> {
  const metric = running.registry.getSingleMetric(name)
  if (!metric) throw new Error(`no metric ${name}`)
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0)
}

let worldToStop: TestWorld | undefined
try {
  const world = await createWorld('bench') // with its sink: the cold tier the attributor reads
  worldToStop = world
  await putCampaigns(world, { load: workloadCampaign })
  const writer = await createEventWriter(world)
  const redis = new Redis(world.redis.url!)
  const now = Date.now()
  const clicks = Array.from({ length: N }, (_, i) =>
    makeClick('load', workloadCampaign, now - 60_000, { publisher_id: `pub-${i % 100}`, sub1: i % 3 === 0 ? `s${i % 997}` : '' }),
  )
  console.log(`attributor throughput bench: ${N} clicks and conversions, ${stack.sources.kafka} Kafka, ${stack.sources.redis} Redis`)
  for (let i = 0; i < N; i += CHUNK) await writer.clicks(clicks.slice(i, i + CHUNK))

  // 1. Clicks stored.
  const clickLimit = await durableLimit(world, world.topics.clicks, (pipeline, messages) => {
    for (const m of messages) pipeline.hset(`bench-bare:h${m.offset.slice(-3)}`, m.key!.subarray(0, 9), m.value!.subarray(0, 18))
  })
  let attributor = await startAttributor(world)
  let running = attributor
  await waitFor(() => running.attributor.health().ok, (ok) => ok, 60_000, 'the attributor to join its group')
  let joinedAt = performance.now()
  // The clock stops when the attributor's own counter says N clicks are stored (an in-process
  // read: polling 50,000 keys in Redis would compete with what is measured); then every click
  // is checked in Redis, outside the clock.
  await waitFor(() => counter(running, 'clickjoin_attributor_clicks_recorded_total'), (n) => n >= N, 300_000, 'clicks recorded')
  const clickRate = N / ((performance.now() - joinedAt) / 1000)
  await waitFor(() => clicksInRedis(redis, world, clicks.map((c) => c.click_id)), (n) => n === N, 60_000, 'every click in Redis')
  await attributor.stop()

  // 2. Conversions decided.
  for (let i = 0; i < N; i += CHUNK) {
    await writer.postbacks(clicks.slice(i, i + CHUNK).map((c, j) => makePostback(c.click_id, c.ts + 60_000, { txn_id: `T-${i + j}` })))
  }
  const outcomeJson = 'x'.repeat(620)
  const conversionLimit = await durableLimit(world, world.topics.conversions, (pipeline, messages) => {
    for (const m of messages) {
      pipeline.set(`bench-bare:b:${m.offset}:${m.key}`, `t:acme:${m.key}\x1f1`, 'EX', 176_400)
      pipeline.hset(`bench-bare:v:${m.offset}:${m.key}`, 'n', '1', 'o1', outcomeJson)
      pipeline.xadd('bench-bare:ob', '*', 'k', m.key!, 'v', outcomeJson)
    }
  })
  attributor = await startAttributor(world)
  running = attributor
  await waitFor(() => running.attributor.health().ok, (ok) => ok, 60_000, 'the attributor to join its group')
  joinedAt = performance.now()
  // Until the attributor's producer has N outcomes acknowledged by Kafka (its own counter, read
  // in process); then the outcomes topic is checked to hold them, outside the clock.
  await waitFor(() => counter(running, 'clickjoin_attributor_outcomes_published_total'), (n) => n >= N, 300_000, 'every conversion decided')
  const conversionRate = N / ((performance.now() - joinedAt) / 1000)
  await waitFor(() => outcomeCount(world), (n) => n >= N, 60_000, 'every outcome in the topic')
  const seconds = async (name: string) =>
    (await running.registry.getSingleMetric(name)!.get()).values
      .filter((v) => (v as { metricName?: string }).metricName === `${name}_sum`)
      .map((v) => `${String(v.labels['op'])} ${v.value.toFixed(2)} s`)
  const redisTime = await seconds('clickjoin_attributor_redis_seconds')
  const clickhouseTime = await seconds('clickjoin_attributor_clickhouse_seconds')
  await attributor.stop()
  redis.disconnect()
  await writer.stop()

  const line = (what: string, rate: number, limit: number) =>
    console.log(`  ${what}: ${Math.round(rate).toLocaleString('en')}/s; durable limit ${Math.round(limit).toLocaleString('en')}/s; ratio ${(rate / limit).toFixed(2)}`)
  line('clicks stored      ', clickRate, clickLimit)
  line('conversions decided', conversionRate, conversionLimit)
  console.log(`  time in Redis round trips by operation (summed over concurrent partitions): ${redisTime.join(', ')}`)
  console.log(`  time in ClickHouse lookups by operation: ${clickhouseTime.join(', ') || 'none'}`)
  await writeBenchResult('attributor', [
    {
      measure: 'attributor clicks stored',
      value: Math.round(clickRate),
      unit: 'clicks/s',
      reference: { label: 'durable limit (bare loop, same writes, pipelined)', value: Math.round(clickLimit) },
      goal: { atLeast: 0.5, of: 'ratio' },
      detail: `${N} clicks, appendfsync always`,
    },
    {
      measure: 'attributor conversions decided, Kafka-acked',
      value: Math.round(conversionRate),
      unit: 'conversions/s',
      reference: { label: 'durable limit (bare loop, same writes, pipelined)', value: Math.round(conversionLimit) },
      goal: { atLeast: 0.5, of: 'ratio' },
      detail: `${N} conversions, appendfsync always, cold lookups of txn_id conversions included`,
    },
  ])
} finally {
  await worldToStop?.stop()
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
