/**
 * Deliveries per second of one dispatcher to a local receiver, next to bare undici requests
 * per second to the same receiver, in the same run:
 *
 *   node --import tsx services/dispatcher/bench/throughput.ts
 *
 * 1. A receiver on 127.0.0.1 answers 200 to everything.
 * 2. Bare undici: N GET requests, C at a time over C keep-alive connections: the ceiling of
 *    this machine's HTTP client and receiver.
 * 3. N attributed outcomes of a publisher with one signed GET rule are produced to the
 *    outcomes topic; the dispatcher (per-host concurrency C) is started and timed until the
 *    receiver has N calls. That includes reading Kafka, recording each delivery in Redis,
 *    claiming it, signing, calling, and producing every attempt record to Kafka.
 *
 * Uses KAFKA_BROKERS / REDIS_URL when set, else starts a local Kafka and Redis.
 * BENCH_DELIVERIES (default 10000) sets N, BENCH_HOST_CONCURRENCY (default 32) sets C.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Agent, request } from 'undici'
import { startStack } from '@clickjoin/local-stack'
import { writeBenchResult } from '@clickjoin/local-stack/bench'
import { waitFor } from '@clickjoin/local-stack/testing'
import { createDispatcherService } from '../src/service.ts'
import { createWorld, newSecret, outcome, startReceiver } from '../test/harness.ts'

const N = Number(process.env['BENCH_DELIVERIES'] ?? 10_000)
const C = Number(process.env['BENCH_HOST_CONCURRENCY'] ?? 32)

const dataDir = await mkdtemp(path.join(tmpdir(), 'dispatcher-bench-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, preferContainers: false, log: () => undefined })
Object.assign(process.env, stack.env)

const receiver = await startReceiver({})
const world = await createWorld('bench_disp')
try {
  // 2. The ceiling: bare undici against the same receiver.
  const agent = new Agent({ connections: C })
  let next = 0
  const bareStarted = performance.now()
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < N) {
        const i = next++
        const res = await request(`${receiver.origin}/bare?c=${i}`, { dispatcher: agent })
        await res.body.dump()
      }
    }),
  )
  const bareRate = N / ((performance.now() - bareStarted) / 1000)
  await agent.close()
  console.log(`bare undici: ${N} requests, ${C} at a time: ${Math.round(bareRate)} requests/s`)

  // 3. The dispatcher, from outcomes already in Kafka to calls received.
  await world.putPublisher('pub-bench', { secret: newSecret(), postbacks: [{ url: `${receiver.origin}/pb?c={click_id}&s1={sub1}&p={payout}` }] })
  for (let i = 0; i < N; i += 5_000) {
    await world.publishOutcomes(Array.from({ length: Math.min(5_000, N - i) }, () => outcome('pub-bench')))
  }
  const before = receiver.calls.length
  const service = await createDispatcherService(
    world.config({ DISPATCH_HOST_CONCURRENCY: String(C), DISPATCH_CONCURRENCY: String(Math.max(C, 256)), LOG_LEVEL: 'error' }),
  )
  const started = performance.now()
  await service.start()
  await waitFor(() => receiver.calls.length - before, (n) => n >= N, 600_000, 'every delivery')
  const rate = N / ((performance.now() - started) / 1000)
  await service.stop()
  console.log(`dispatcher: ${N} deliveries, per-host concurrency ${C}: ${Math.round(rate)} deliveries/s (${(rate / bareRate).toFixed(2)} of bare undici)`)

  await writeBenchResult('dispatcher', [
    {
      measure: 'dispatcher deliveries/s to one local host',
      value: Math.round(rate),
      unit: 'deliveries/s',
      reference: { label: 'bare undici requests/s, same receiver', value: Math.round(bareRate) },
      detail: `N=${N}, per-host concurrency ${C}; from outcomes in Kafka to calls received, incl. Redis job records and attempt records to Kafka`,
    },
  ])
} finally {
  await receiver.close()
  await world.close()
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
