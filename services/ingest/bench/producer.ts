/**
 * The click path's producer alone, without HTTP: BENCH_CONCURRENCY closed-loop senders (each
 * awaits its send, like a connection awaiting its 302) push click-sized messages through
 * ingest's producer (createFastProducer, ingest's settings: acks=all, linger 1 ms, 3 batches in
 * flight) for BENCH_DURATION_S; prints messages/s and this process's CPU µs per message
 * (process.cpuUsage), the batches' size and the produce requests. The producer's share of a
 * click's CPU, measurable apart from fastify's.
 *
 *   node --import tsx services/ingest/bench/producer.ts
 *
 * BENCH_CONCURRENCY (50,200), BENCH_DURATION_S (6), BENCH_RUNS (3), BENCH_LINGER_MS (1).
 * Starts a local Kafka (or uses KAFKA_BROKERS).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startStack } from '@clickjoin/local-stack'
import { medianWithRange } from '@clickjoin/local-stack/bench'
import { createFastProducer, createKafka, ensureTopics } from '@clickjoin/kafka'

const concurrencies = (process.env['BENCH_CONCURRENCY'] ?? '50,200').split(',').map(Number)
const duration = Number(process.env['BENCH_DURATION_S'] ?? 6)
const runs = Number(process.env['BENCH_RUNS'] ?? 3)
const lingerMs = Number(process.env['BENCH_LINGER_MS'] ?? 1)

const dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-producer-bench-'))
const stack = process.env['KAFKA_BROKERS'] ? undefined : await startStack({ dataDir, kafkaPort: 0, redisPort: 0, log: () => undefined })
const brokers = process.env['KAFKA_BROKERS']?.split(',') ?? stack!.kafkaBrokers
try {
  const topic = `bench_producer_${Date.now().toString(36)}`
  const kafka = createKafka({ brokers, clientId: 'producer-bench' })
  await ensureTopics(kafka, [{ topic, numPartitions: 6 }], { replicationFactor: 1 })
  let batches = 0
  let batched = 0
  const producer = createFastProducer(
    { brokers, clientId: 'producer-bench', requestTimeoutMs: 5_000, retries: 2 },
    { lingerMs, maxInFlightBatches: 3, ackTimeoutMs: 5_000, maxQueuedMessages: 50_000, onBatch: (b) => void ((batches += 1), (batched += b.messages)) },
  )
  await producer.start()
  // A click event's size (~520 bytes of JSON) and a click ID's key.
  const value = Buffer.from(JSON.stringify({ v: 1, campaign_id: 'bench', publisher_id: 'p1', pad: 'x'.repeat(460) }))
  const keys = Array.from({ length: 4096 }, () => randomBytes(24).toString('base64url'))

  async function run(concurrency: number, seconds: number) {
    let sent = 0
    const until = performance.now() + seconds * 1000
    batches = 0
    batched = 0
    const cpu = process.cpuUsage()
    const started = performance.now()
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          await producer.send(topic, { key: keys[sent & 4095]!, value })
          sent++
        }
      }),
    )
    const used = process.cpuUsage(cpu)
    const elapsed = (performance.now() - started) / 1000
    return { perS: sent / elapsed, cpuUs: (used.user + used.system) / sent, sysUs: used.system / sent, batch: batched / Math.max(1, batches) }
  }

  await run(50, 2) // warm-up: JIT, metadata
  for (const c of concurrencies) {
    const all = []
    for (let i = 0; i < runs; i++) all.push(await run(c, duration))
    const f = (xs: number[], d = 0) => medianWithRange(xs, (n) => n.toFixed(d)).text
    console.log(
      `producer ${String(c).padStart(4)} senders  ${f(all.map((r) => r.perS)).padStart(24)} msg/s  ` +
        `CPU ${f(all.map((r) => r.cpuUs), 1)} µs/message (kernel ${f(all.map((r) => r.sysUs), 1)})  batches of ${f(all.map((r) => r.batch), 1)} messages`,
    )
  }
  console.log(`produce requests: ${producer.stats().produceRequests}, batches: ${producer.stats().batches}`)
  await producer.stop()
} finally {
  await stack?.stop()
  await rm(dataDir, { recursive: true, force: true })
}
