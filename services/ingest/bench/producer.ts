/**
 * The click path's producer alone, without HTTP: click-sized messages through ingest's producer
 * (createFastProducer, ingest's settings: acks=all, linger 1 ms, 3 batches in flight); prints
 * messages/s and this process's CPU µs per message (process.cpuUsage), the batches' size and
 * the produce requests. The producer's share of a click's CPU, measurable apart from fastify's.
 *
 *   node --import tsx services/ingest/bench/producer.ts
 *
 * Two loads: BENCH_CONCURRENCY closed-loop senders (each awaits its send, like a connection
 * awaiting its 302), or, with BENCH_RATE (messages/s), that rate held by a 1 ms ticker with at
 * most BENCH_CONCURRENCY sends outstanding (the steady figure on a shared box: the same work
 * per second whatever the box does meanwhile).
 *
 * A/B: BENCH_PRODUCER_B_ENTRY, a module exporting createFastProducer (e.g. a copy of an older
 * packages/kafka/src kept under packages/kafka/.cache/, so its imports resolve), is measured
 * alongside, one run after the other at every point, alternating which goes first.
 *
 * BENCH_B_LINGER_MS / BENCH_B_IN_FLIGHT alone measure this branch's producer with other
 * settings as B (or set them for the B entry).
 *
 * BENCH_CONCURRENCY (50,200), BENCH_RATE (unset), BENCH_DURATION_S (6), BENCH_RUNS (3),
 * BENCH_LINGER_MS (1), BENCH_IN_FLIGHT (3). Starts a local Kafka (or uses KAFKA_BROKERS).
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { startStack } from '@clickjoin/local-stack'
import { medianWithRange } from '@clickjoin/local-stack/bench'
import { createFastProducer, createKafka, ensureTopics, type EventProducer } from '@clickjoin/kafka'

const concurrencies = (process.env['BENCH_CONCURRENCY'] ?? '50,200').split(',').map(Number)
const rate = process.env['BENCH_RATE'] ? Number(process.env['BENCH_RATE']) : undefined
const duration = Number(process.env['BENCH_DURATION_S'] ?? 6)
const runs = Number(process.env['BENCH_RUNS'] ?? 3)
const lingerMs = Number(process.env['BENCH_LINGER_MS'] ?? 1)
const maxInFlightBatches = Number(process.env['BENCH_IN_FLIGHT'] ?? 3)
const bEntry = process.env['BENCH_PRODUCER_B_ENTRY']
const bLingerMs = Number(process.env['BENCH_B_LINGER_MS'] ?? lingerMs)
const bInFlight = Number(process.env['BENCH_B_IN_FLIGHT'] ?? maxInFlightBatches)
const bSettings = bLingerMs !== lingerMs || bInFlight !== maxInFlightBatches

type Create = typeof createFastProducer

const dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-producer-bench-'))
const stack = process.env['KAFKA_BROKERS'] ? undefined : await startStack({ dataDir, kafkaPort: 0, redisPort: 0, log: () => undefined })
const brokers = process.env['KAFKA_BROKERS']?.split(',') ?? stack!.kafkaBrokers
const started: EventProducer[] = []
try {
  const topic = `bench_producer_${Date.now().toString(36)}`
  const kafka = createKafka({ brokers, clientId: 'producer-bench' })
  await ensureTopics(kafka, [{ topic, numPartitions: 6 }], { replicationFactor: 1 })

  const variants: Array<{ name: string; create: Create; lingerMs: number; inFlight: number }> = [
    { name: 'this branch', create: createFastProducer, lingerMs, inFlight: maxInFlightBatches },
  ]
  if (bEntry || bSettings) {
    const create = bEntry
      ? ((await import(pathToFileURL(path.resolve(bEntry)).href)) as { createFastProducer: Create }).createFastProducer
      : createFastProducer
    const name = bEntry ? path.basename(path.dirname(path.resolve(bEntry))) : `linger ${bLingerMs}/${bInFlight}`
    variants.push({ name, create, lingerMs: bLingerMs, inFlight: bInFlight })
  }
  const batchStats = { batches: 0, batched: 0 }
  const producers = new Map<string, EventProducer>()
  for (const v of variants) {
    const producer = v.create(
      { brokers, clientId: 'producer-bench', requestTimeoutMs: 5_000, retries: 2 },
      {
        lingerMs: v.lingerMs,
        maxInFlightBatches: v.inFlight,
        ackTimeoutMs: 5_000,
        maxQueuedMessages: 50_000,
        onBatch: (b) => void ((batchStats.batches += 1), (batchStats.batched += b.messages)),
      },
    )
    await producer.start()
    started.push(producer)
    producers.set(v.name, producer)
  }
  // A click event's size (~520 bytes of JSON) and a click ID's key.
  const value = Buffer.from(JSON.stringify({ v: 1, campaign_id: 'bench', publisher_id: 'p1', pad: 'x'.repeat(460) }))
  const keys = Array.from({ length: 4096 }, () => randomBytes(24).toString('base64url'))

  async function closedLoop(producer: EventProducer, concurrency: number, until: number): Promise<number> {
    let sent = 0
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < until) {
          await producer.send(topic, { key: keys[sent & 4095]!, value })
          sent++
        }
      }),
    )
    return sent
  }

  /** `perS` messages/s on a 1 ms ticker, at most `outstanding` unacknowledged; a refused send counts as a failure. */
  async function heldRate(producer: EventProducer, perS: number, outstanding: number, until: number): Promise<number> {
    let sent = 0
    let pending = 0
    let failed = 0
    const t0 = performance.now()
    await new Promise<void>((done) => {
      const ticker = setInterval(() => {
        const now = performance.now()
        if (now >= until) {
          clearInterval(ticker)
          done()
          return
        }
        const due = Math.floor(((now - t0) * perS) / 1000)
        while (sent < due && pending < outstanding) {
          pending++
          producer.send(topic, { key: keys[sent & 4095]!, value }).then(
            () => void pending--,
            () => void (pending--, failed++),
          )
          sent++
        }
      }, 1)
    })
    await producer.flush()
    if (failed > 0) console.log(`  (${failed} sends failed)`)
    return sent
  }

  async function run(producer: EventProducer, concurrency: number, seconds: number) {
    batchStats.batches = 0
    batchStats.batched = 0
    const cpu = process.cpuUsage()
    const t = performance.now()
    const until = t + seconds * 1000
    const sent = rate === undefined ? await closedLoop(producer, concurrency, until) : await heldRate(producer, rate, concurrency, until)
    const used = process.cpuUsage(cpu)
    const elapsed = (performance.now() - t) / 1000
    return {
      perS: sent / elapsed,
      cpuUs: (used.user + used.system) / sent,
      sysUs: used.system / sent,
      batch: batchStats.batched / Math.max(1, batchStats.batches),
    }
  }

  for (const producer of producers.values()) await run(producer, 50, 2) // warm-up: JIT, metadata
  for (const c of concurrencies) {
    const all = new Map<string, Array<Awaited<ReturnType<typeof run>>>>(variants.map((v) => [v.name, []]))
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? variants : [...variants].reverse()
      const pair: string[] = []
      for (const v of order) {
        const r = await run(producers.get(v.name)!, c, duration)
        all.get(v.name)!.push(r)
        pair.push(`${v.name} ${r.cpuUs.toFixed(2)}`)
      }
      if (variants.length > 1) console.log(`  run ${i + 1}, CPU µs/message: ${pair.join(' · ')}`)
    }
    const f = (xs: number[], d = 0) => medianWithRange(xs, (n) => n.toFixed(d)).text
    const load = rate === undefined ? `${String(c).padStart(4)} senders` : `${rate} msg/s (≤ ${c} outstanding)`
    for (const v of variants) {
      const rs = all.get(v.name)!
      console.log(
        `${v.name.padEnd(12)} ${load}  ${f(rs.map((r) => r.perS)).padStart(24)} msg/s  ` +
          `CPU ${f(rs.map((r) => r.cpuUs), 2)} µs/message (kernel ${f(rs.map((r) => r.sysUs), 2)})  batches of ${f(rs.map((r) => r.batch), 1)} messages`,
      )
    }
  }
  for (const [name, producer] of producers) {
    console.log(`${name}: produce requests ${producer.stats().produceRequests}, batches ${producer.stats().batches}`)
  }
} finally {
  for (const producer of started) await producer.stop()
  await stack?.stop()
  await rm(dataDir, { recursive: true, force: true })
}
