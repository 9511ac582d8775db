/**
 * Throughput of one attributor against the ceiling set by Kafka itself, in the same run:
 *
 *   node --import tsx services/attributor/bench/throughput.ts
 *
 * 1. N clicks are produced and recorded by the attributor (then it stops).
 * 2. N conversions (all attributable) are produced.
 * 3. A bare kafkajs eachBatch loop reads the conversions topic start to end: the read ceiling.
 * 4. The attributor (same group as in 1, so only conversions are new) decides all N; timed from
 *    its start until N outcomes are in the outcomes topic, i.e. acknowledged by Kafka.
 * 5. Bytes per click in Redis by MEMORY USAGE over a sample of click keys.
 *
 * Uses KAFKA_BROKERS / REDIS_URL when set, else starts a local Kafka and Redis.
 * BENCH_CONVERSIONS (default 50000) sets N.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { createKafka } from '@clickjoin/kafka'
import { startStack } from '@clickjoin/local-stack'
import { uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import {
  createEventWriter,
  createWorld,
  makeClick,
  makePostback,
  putCampaigns,
  startAttributor,
  type TestWorld,
} from '../test/harness.ts'
import { outcomeCount, workloadCampaign } from '../test/workload.ts'
import { clickKey } from '../src/redis-state.ts'
import { writeBenchResult } from '@clickjoin/local-stack/bench'

const N = Number(process.env['BENCH_CONVERSIONS'] ?? 50_000)
const CHUNK = 5_000

const dataDir = await mkdtemp(path.join(tmpdir(), 'attributor-bench-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, preferContainers: false, log: () => undefined })
Object.assign(process.env, stack.env)

async function bareEachBatchRate(world: TestWorld): Promise<number> {
  const kafka = createKafka({ brokers: world.brokers, clientId: 'bench-bare', log: () => undefined })
  const consumer = kafka.consumer({ groupId: uniqueName('bench-bare'), maxBytesPerPartition: 4 * 1024 * 1024 })
  await consumer.connect()
  await consumer.subscribe({ topics: [world.topics.conversions], fromBeginning: true })
  let read = 0
  let firstAt = 0
  let doneAt = 0
  const started = performance.now()
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (firstAt === 0) firstAt = performance.now()
      read += batch.messages.length
      if (read >= N && doneAt === 0) doneAt = performance.now()
    },
  })
  await waitFor(() => read, (n) => n >= N, 120_000, 'bare loop to read every conversion')
  await consumer.disconnect()
  console.log(`  bare eachBatch: ${read} messages; group join ${((firstAt - started) / 1000).toFixed(2)} s`)
  return N / ((doneAt - firstAt) / 1000)
}

let worldToStop: TestWorld | undefined
try {
  // A Redis of our own: the production key prefix, so bytes per click are what production sees.
  const created = await createWorld('bench') // with its sink: the cold tier the attributor reads
  worldToStop = created
  const world = { ...created, ...(stack.sources.redis === 'environment' ? {} : { keyPrefix: 'cj:' }) }
  await putCampaigns(world, { load: workloadCampaign })
  const writer = await createEventWriter(world)
  const now = Date.now()
  const clicks = Array.from({ length: N }, (_, i) =>
    makeClick('load', workloadCampaign, now - 60_000, { publisher_id: `pub-${i % 100}`, sub1: i % 3 === 0 ? `s${i % 997}` : '' }),
  )

  console.log(`attributor throughput bench: ${N} conversions, ${stack.sources.kafka} Kafka, ${stack.sources.redis} Redis`)
  for (let i = 0; i < N; i += CHUNK) await writer.clicks(clicks.slice(i, i + CHUNK))
  const redis = new Redis(stack.redisUrl)
  const clickKeys = clicks.map((c) => clickKey(world.keyPrefix, c.click_id))
  let attributor = await startAttributor(world)
  await waitFor(() => redis.exists(...clickKeys.slice(-100)), (n) => n === 100, 120_000, 'clicks recorded')
  await attributor.stop()

  let firstPostbackId = ''
  for (let i = 0; i < N; i += CHUNK) {
    const postbacks = clicks.slice(i, i + CHUNK).map((c, j) => makePostback(c.click_id, c.ts + 60_000, { txn_id: `T-${i + j}` }))
    firstPostbackId ||= postbacks[0]!.postback_id
    await writer.postbacks(postbacks)
  }

  const bareRate = await bareEachBatchRate(world)

  const started = performance.now()
  attributor = await startAttributor(world)
  const running = attributor
  // From the moment it owns the partitions (group joined) to the last outcome acked by Kafka.
  await waitFor(() => running.attributor.health().ok, (ok) => ok, 60_000, 'the attributor to join its group')
  const joinedAt = performance.now()
  await waitFor(() => outcomeCount(world), (n) => n >= N, 300_000, 'every conversion decided')
  const decidedAt = performance.now()
  const redisTime = (await running.registry.getSingleMetric('attributor_redis_seconds')!.get()).values
    .filter((v) => (v as { metricName?: string }).metricName === 'attributor_redis_seconds_sum')
    .map((v) => `${String(v.labels['op'])} ${v.value.toFixed(2)} s`)
  await attributor.stop()
  const attributorRate = N / ((decidedAt - joinedAt) / 1000)

  // Bytes per click: MEMORY USAGE (key, value and Redis' own overhead for them) over a sample.
  const sample = clickKeys.filter((_, i) => i % Math.max(1, Math.floor(N / 2_000)) === 0)
  const pipeline = redis.pipeline()
  for (const key of sample) pipeline.memory('USAGE', key, 'SAMPLES', '0')
  const usages = ((await pipeline.exec()) ?? []).map(([, bytes]) => Number(bytes))
  const average = usages.reduce((a, b) => a + b, 0) / usages.length
  const plain = clicks.find((c) => c.sub1 === '')!
  const plainBytes = await redis.memory('USAGE', clickKey(world.keyPrefix, plain.click_id), 'SAMPLES', '0')
  const withSub = clicks.find((c) => c.sub1 !== '')!
  const withSubBytes = await redis.memory('USAGE', clickKey(world.keyPrefix, withSub.click_id), 'SAMPLES', '0')
  const value = await redis.getBuffer(clickKey(world.keyPrefix, plain.click_id))
  // Where Redis itself spent its time (whole run: clicks and conversions).
  const commandStats = (await redis.info('commandstats'))
    .split('\n')
    .map((line) => /^cmdstat_(\w+):calls=(\d+),usec=(\d+)/.exec(line))
    .filter((m) => m !== null)
    .map((m) => ({ command: m[1]!, calls: Number(m[2]), seconds: Number(m[3]) / 1e6 }))
    .sort((a, b) => b.seconds - a.seconds)
    .slice(0, 8)
  const conversionBytes = await redis.memory('USAGE', `${world.keyPrefix}v:t:acme:T-0`, 'SAMPLES', '0')
  const postbackBytes = await redis.memory('USAGE', `${world.keyPrefix}b:${firstPostbackId}`, 'SAMPLES', '0')
  redis.disconnect()
  await writer.stop()

  console.log(`  bare kafkajs eachBatch read rate:   ${Math.round(bareRate).toLocaleString('en')} conversions/s`)
  console.log(
    `  attributor decided (Kafka-acked):  ${Math.round(attributorRate).toLocaleString('en')} conversions/s ` +
      `(${((decidedAt - joinedAt) / 1000).toFixed(1)} s after joining the group; ${((joinedAt - started) / 1000).toFixed(1)} s to join)`,
  )
  console.log(`  time in Redis round trips by operation (summed over concurrent partitions): ${redisTime.join(', ')}`)
  console.log(`  Redis CPU by command: ${commandStats.map((c) => `${c.command} ${c.seconds.toFixed(2)} s/${c.calls}`).join(', ')}`)
  console.log(`  attributor / bare: ${(attributorRate / bareRate).toFixed(2)}`)
  console.log(
    `  bytes per click (MEMORY USAGE, key prefix "${world.keyPrefix}" = ${world.keyPrefix.length} chars): ` +
      `average ${average.toFixed(1)} over ${usages.length} keys; no sub IDs ${String(plainBytes)}; with sub1 ${String(withSubBytes)}`,
  )
  await writeBenchResult('attributor', [
    {
      measure: 'attributor conversions decided, Kafka-acked',
      value: Math.round(attributorRate),
      unit: 'conversions/s',
      reference: { label: 'bare kafkajs eachBatch read', value: Math.round(bareRate) },
      goal: { atLeast: 0.5, of: 'ratio' },
      detail: `${N} conversions, appendfsync always`,
    },
    {
      measure: 'Redis bytes per click (MEMORY USAGE)',
      value: Math.round(average * 10) / 10,
      unit: 'bytes',
      goal: { atMost: 128, of: 'value' },
      detail: `average over ${usages.length} keys`,
    },
  ])
  console.log(`  per conversion: v: hash ${String(conversionBytes)} bytes (one version), b: record ${String(postbackBytes)} bytes per postback`)
  console.log(`  sample value (${value?.length ?? 0} bytes): ${JSON.stringify(value?.toString('utf8'))}`)
} finally {
  await worldToStop?.stop()
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
