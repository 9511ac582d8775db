/**
 * Throughput of one attributor, each figure next to a "durable limit" measured in the same run:
 * a bare loop that reads the same topic and writes the same number of keys and bytes to the
 * same Redis (same appendfsync always), one pipeline per batch.
 *
 *   node --import tsx services/attributor/bench/throughput.ts
 *
 * 1. NC clicks are produced; the attributor records them all (clicks/s stored), timed from
 *    joining its group until the last click is in Redis. The click durable limit: a bare
 *    eachBatch loop over the clicks topic, one HSET per click (same field and value sizes) in
 *    one pipeline per batch.
 * 2. N conversions (all attributable, with a txn_id, on the first N clicks) are produced; the attributor decides all
 *    (conversions/s, until N outcomes are acknowledged by Kafka). The conversion durable limit:
 *    a bare loop over the conversions topic writing per message what a decision writes (the
 *    postback record, the conversion hash with its outcome JSON, an outbox entry), one
 *    pipeline per batch.
 *
 * Each round (BENCH_RUNS, default 3) runs all four in a fresh world (topics, key prefix, sink
 * database), so every ratio is of two figures measured a minute apart at most; the median of the
 * rounds is printed with min–max, next to the CPU µs per event of each process and of the
 * measured process's threads: the steadier figures on a shared box.
 *
 * The attributor runs as `npm start` runs it, a process of its own (`src/server.ts`), read through
 * its `/readyz` and `/metrics`; this process runs the world's sink (embedded ClickHouse: the cold
 * tier the attributor reads through the sink's SQL endpoint), the load and the durable limit's
 * loop. Before each measured phase the sink has stored what was produced, so it does not compete;
 * while conversions are decided it does store their outcomes (the `conversions` table), as in
 * production.
 *
 * BENCH_CPU_PROFILE_DIR=<dir>: V8 CPU profiles of the first round's two attributor processes
 * (recording clicks, deciding conversions), start-up included (summarise it with services/ingest/bench/profile-summary.ts).
 *
 * Uses KAFKA_BROKERS / REDIS_URL when set, else starts a local Kafka and Redis.
 * BENCH_CONVERSIONS (default 50000) sets N, BENCH_CLICKS (default 200000) NC: a click is
 * recorded several times faster than a conversion is decided, and 50,000 clicks took under
 * a second and a half, too short a phase to time.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { Redis, type ChainableCommander } from 'ioredis'
import { createKafka, type KafkaMessage } from '@clickjoin/kafka'
import { freePort, startStack } from '@clickjoin/local-stack'
import { cpuSeconds, cpuSecondsByThread, medianWithRange, metricSamples, metricSum, writeBenchResult } from '@clickjoin/local-stack/bench'
import { uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { createColdTierClient } from '../src/cold-tier.ts'
import { clicksInRedis, createEventWriter, createWorld, makeClick, makePostback, putCampaigns, spawnAttributor, type TestWorld } from '../test/harness.ts'
import { outcomeCount, workloadCampaign } from '../test/workload.ts'

const N = Number(process.env['BENCH_CONVERSIONS'] ?? 50_000)
const NC = Math.max(N, Number(process.env['BENCH_CLICKS'] ?? 200_000))
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3)
const CHUNK = 5_000
/** Extra flags for the attributor's node (an A/B of V8 settings), e.g. BENCH_ATTRIBUTOR_NODE_ARGS="--max-semi-space-size=64". */
const ATTRIBUTOR_NODE_ARGS = (process.env['BENCH_ATTRIBUTOR_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')

const dataDir = await mkdtemp(path.join(tmpdir(), 'attributor-bench-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, preferContainers: false, log: () => undefined })
Object.assign(process.env, stack.env)

/** Reads `topic`'s `count` messages with a bare eachBatch loop, writing one pipeline per batch; events/s. */
async function durableLimit(world: TestWorld, topic: string, count: number, writeBatch: (pipeline: ChainableCommander, messages: KafkaMessage[]) => void): Promise<number> {
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
      if (read >= count && doneAt === 0) doneAt = performance.now()
    },
  })
  await waitFor(() => read, (n) => n >= count, 300_000, `bare loop over ${topic}`)
  await consumer.disconnect()
  redis.disconnect()
  return count / ((doneAt - firstAt) / 1000)
}

/** The commands Redis spent most time in, from `INFO commandstats`: "evalsha 3.1 s (12 calls, 258 ms each)". */
function busiestCommands(info: string, top = 5): string {
  const stats = [...info.matchAll(/^cmdstat_(\w+):calls=(\d+),usec=(\d+)/gm)].map(([, name, calls, usec]) => ({ name: name!, calls: Number(calls), usec: Number(usec) }))
  return stats
    .sort((a, b) => b.usec - a.usec)
    .slice(0, top)
    .map((c) => `${c.name} ${(c.usec / 1e6).toFixed(2)} s (${c.calls} calls, ${(c.usec / c.calls / 1000).toFixed(2)} ms each)`)
    .join(', ')
}

const redisInfo = new Redis(stack.redisUrl)
/** The processes every phase shares: this one (the world's sink, the load, the durable limit's loop), Redis and the broker. */
const shared: Record<string, number> = {
  'redis-server': Number(/process_id:(\d+)/.exec(await redisInfo.info('server'))?.[1] ?? NaN),
  ...(stack.sources.kafka === 'local-process' ? { broker: stack.pids[0]! } : {}),
}

interface Measured {
  rate: number
  /** CPU µs per event of each process. */
  cpuUs: Record<string, number>
  /** CPU µs per event of this process's thread groups (main = JavaScript; chDB's pools; V8 and libuv helpers). */
  threadUs: Record<string, number>
  /** The same for this process (the world's sink: chDB's threads apart from JavaScript's). */
  benchThreadUs: Record<string, number>
}

/**
 * Runs `work`, which handles `events`; returns its rate, the CPU µs per event of each process
 * (`own`, the one doing the stage's work, first) and of `own`'s thread groups.
 */
async function measured(events: number, own: [string, number], work: () => Promise<number>): Promise<Measured> {
  const processes: Record<string, number> = { [own[0]]: own[1], ...(own[1] === process.pid ? {} : { 'bench process (sink)': process.pid }), ...shared }
  const pids = Object.values(processes)
  const before = await Promise.all(pids.map(cpuSeconds))
  const threadsBefore = await Promise.all([own[1], process.pid].map(cpuSecondsByThread))
  const rate = await work()
  const after = await Promise.all(pids.map(cpuSeconds))
  const threadsAfter = await Promise.all([own[1], process.pid].map(cpuSecondsByThread))
  const [threadUs, benchThreadUs] = threadsAfter.map((byName, p) =>
    Object.fromEntries([...byName].map(([name, s]) => [name, ((s - (threadsBefore[p]!.get(name) ?? 0)) * 1e6) / events])),
  )
  return {
    rate,
    cpuUs: Object.fromEntries(Object.keys(processes).map((name, i) => [name, ((after[i]! - before[i]!) * 1e6) / events])),
    threadUs: threadUs!,
    benchThreadUs: benchThreadUs!,
  }
}

/** The attributor as `npm start` runs it: a process of its own, read through its HTTP endpoints. */
interface AttributorProcess {
  pid: number
  ready(): Promise<boolean>
  /** A metric summed over its labels, from `/metrics`. */
  metric(name: string): Promise<number>
  /** `<op> <seconds>` of each op of a `*_seconds` histogram. */
  secondsByOp(name: string): Promise<string[]>
  stop(): Promise<void>
}

async function attributorProcess(world: TestWorld, label: string, profileDir?: string): Promise<AttributorProcess> {
  const port = await freePort()
  const child = await spawnAttributor(world, {
    label,
    env: { PORT: String(port) },
    nodeArgs: [
      ...ATTRIBUTOR_NODE_ARGS,
      // One file per thread (tsx's loader has its own): the attributor's is the largest.
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, label)}`] : []),
    ],
  })
  const base = `http://127.0.0.1:${port}`
  const page = async () => (await fetch(`${base}/metrics`)).text()
  return {
    pid: child.pid,
    ready: async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok === true,
    metric: async (name) => metricSum(await page(), name),
    secondsByOp: async (name) =>
      metricSamples(await page(), `${name}_sum`).map((s) => `${/op="([^"]*)"/.exec(s.labels)?.[1] ?? '?'} ${s.value.toFixed(2)} s`),
    stop: () => child.stop(60_000),
  }
}

/** Until the world's sink has stored `count` rows in `table` (so it does not compete with the next phase). */
async function sinkCaughtUp(world: TestWorld, table: string, count: number): Promise<void> {
  const client = createColdTierClient(world.clickhouseUrl)
  try {
    const stored = async () => {
      const rs = await client.query({ query: `SELECT count() AS n FROM ${world.database}.${table}`, format: 'JSONEachRow' })
      return Number((await rs.json<{ n: string }>())[0]?.n ?? 0)
    }
    await waitFor(stored, (n) => n >= count, 300_000, `the sink to store ${count} rows in ${table}`)
  } finally {
    await client.close()
  }
}

interface Round {
  clicks: Measured
  clickLimit: Measured
  conversions: Measured
  conversionLimit: Measured
  redisTime: string[]
  clickhouseTime: string[]
  redisBusy: string
}

async function round(index: number): Promise<Round> {
  const world = await createWorld('bench') // with its sink: the cold tier the attributor reads
  const writer = await createEventWriter(world)
  const redis = new Redis(world.redis.url!)
  try {
    await putCampaigns(world, { load: workloadCampaign })
    const now = Date.now()
    const clicks = Array.from({ length: NC }, (_, i) =>
      makeClick('load', workloadCampaign, now - 60_000, { publisher_id: `pub-${i % 100}`, sub1: i % 3 === 0 ? `s${i % 997}` : '' }),
    )
    for (let i = 0; i < NC; i += CHUNK) await writer.clicks(clicks.slice(i, i + CHUNK))
    await sinkCaughtUp(world, 'clicks', NC)

    // 1. Clicks stored.
    const clickLimit = await measured(NC, ['bench process (durable limit loop)', process.pid], () =>
      durableLimit(world, world.topics.clicks, NC, (pipeline, messages) => {
        for (const m of messages) pipeline.hset(`bench-bare:h${m.offset.slice(-3)}`, m.key!.subarray(0, 9), m.value!.subarray(0, 18))
      }),
    )
    const profileDir = index === 0 ? process.env['BENCH_CPU_PROFILE_DIR'] : undefined
    let attributor = await attributorProcess(world, `bench-clicks-${index + 1}`, profileDir)
    // Ready = in its group, fetching: its start-up (loading, connecting) is not measured.
    await waitFor(() => attributor.ready(), (ok) => ok, 60_000, 'the attributor to join its group')
    const clickPhase = await measured(NC, ['attributor', attributor.pid], async () => {
      const joinedAt = performance.now()
      // The clock stops when the attributor's own counter says NC clicks are stored (polling
      // every key in Redis would compete with what is measured).
      // Every 100 ms: a /metrics page per poll costs the attributor little.
      await waitFor(() => attributor.metric('clickjoin_attributor_clicks_recorded_total'), (n) => n >= NC, 300_000, 'clicks recorded', 100)
      return NC / ((performance.now() - joinedAt) / 1000)
    })
    await waitFor(() => clicksInRedis(redis, world, clicks.map((c) => c.click_id)), (n) => n === NC, 60_000, 'every click in Redis')
    await attributor.stop()

    // 2. Conversions decided.
    for (let i = 0; i < N; i += CHUNK) {
      await writer.postbacks(clicks.slice(i, Math.min(N, i + CHUNK)).map((c, j) => makePostback(c.click_id, c.ts + 60_000, { txn_id: `T-${i + j}` })))
    }
    await sinkCaughtUp(world, 'postbacks', N)
    const outcomeJson = 'x'.repeat(620)
    const conversionLimit = await measured(N, ['bench process (durable limit loop)', process.pid], () =>
      durableLimit(world, world.topics.conversions, N, (pipeline, messages) => {
        for (const m of messages) {
          pipeline.set(`bench-bare:b:${m.offset}:${m.key}`, `t:acme:${m.key}\x1f1`, 'EX', 176_400)
          pipeline.hset(`bench-bare:v:${m.offset}:${m.key}`, 'n', '1', 'o1', outcomeJson)
          pipeline.xadd('bench-bare:ob', '*', 'k', m.key!, 'v', outcomeJson)
        }
      }),
    )
    await redis.config('RESETSTAT')
    attributor = await attributorProcess(world, `bench-conversions-${index + 1}`, profileDir)
    await waitFor(() => attributor.ready(), (ok) => ok, 60_000, 'the attributor to join its group')
    const conversionPhase = await measured(N, ['attributor', attributor.pid], async () => {
      const joinedAt = performance.now()
      // Until the attributor's producer has N outcomes acknowledged by Kafka (its own counter).
      await waitFor(() => attributor.metric('clickjoin_attributor_outcomes_published_total'), (n) => n >= N, 300_000, 'every conversion decided', 100)
      return N / ((performance.now() - joinedAt) / 1000)
    })
    const redisBusy = busiestCommands(await redis.info('commandstats'))
    await waitFor(() => outcomeCount(world), (n) => n >= N, 60_000, 'every outcome in the topic')
    const redisTime = await attributor.secondsByOp('clickjoin_attributor_redis_seconds')
    const clickhouseTime = await attributor.secondsByOp('clickjoin_attributor_clickhouse_seconds')
    await attributor.stop()
    if (profileDir) console.log(`  CPU profiles of the attributor processes (per thread): ${path.join(profileDir, `bench-{clicks,conversions}-${index + 1}`)}`)
    const bare = await redis.keys('bench-bare:*')
    if (bare.length > 0) await redis.del(bare)
    return { clicks: clickPhase, clickLimit, conversions: conversionPhase, conversionLimit, redisTime, clickhouseTime, redisBusy }
  } finally {
    redis.disconnect()
    await writer.stop()
    await world.stop()
  }
}

try {
  console.log(`attributor throughput bench: ${NC} clicks and ${N} conversions per round, ${RUNS} rounds, ${stack.sources.kafka} Kafka, ${stack.sources.redis} Redis`)
  const rounds: Round[] = []
  for (let i = 0; i < RUNS; i++) {
    const r = await round(i)
    rounds.push(r)
    const f = (n: number) => Math.round(n).toLocaleString('en')
    console.log(
      `round ${i + 1}: clicks ${f(r.clicks.rate)}/s vs limit ${f(r.clickLimit.rate)}/s (${(r.clicks.rate / r.clickLimit.rate).toFixed(2)}); ` +
        `conversions ${f(r.conversions.rate)}/s vs limit ${f(r.conversionLimit.rate)}/s (${(r.conversions.rate / r.conversionLimit.rate).toFixed(2)}); load average ${loadavg()[0]!.toFixed(1)}`,
    )
    console.log(`  time in Redis round trips by operation (summed over concurrent partitions): ${r.redisTime.join(', ')}`)
    console.log(`  time in ClickHouse lookups by operation: ${r.clickhouseTime.join(', ') || 'none'}`)
    console.log(`  Redis's own time while deciding (INFO commandstats; a script's commands count apart): ${r.redisBusy}`)
  }
  const spread = (pick: (r: Round) => number, format?: (n: number) => string) => medianWithRange(rounds.map(pick), format)
  const rateOf = (n: number) => Math.round(n).toLocaleString('en')
  const cpu = (pick: (r: Round) => Record<string, number>) =>
    Object.keys(pick(rounds[0]!))
      .map((name) => `${name} ${spread((r) => pick(r)[name]!, (n) => n.toFixed(1)).text}`)
      .join('; ')
  console.log(`\nmedian (min–max) of ${RUNS} rounds:`)
  const clickRatio = spread((r) => r.clicks.rate / r.clickLimit.rate)
  const conversionRatio = spread((r) => r.conversions.rate / r.conversionLimit.rate)
  console.log(`  clicks stored      : ${spread((r) => r.clicks.rate, rateOf).text}/s; durable limit ${spread((r) => r.clickLimit.rate, rateOf).text}/s; ratio ${clickRatio.text} (goal ≥ 0.5)`)
  console.log(`    CPU µs per click, attributor: ${cpu((r) => r.clicks.cpuUs)}`)
  console.log(`    CPU µs per click, durable limit: ${cpu((r) => r.clickLimit.cpuUs)}`)
  console.log(`  conversions decided: ${spread((r) => r.conversions.rate, rateOf).text}/s; durable limit ${spread((r) => r.conversionLimit.rate, rateOf).text}/s; ratio ${conversionRatio.text} (goal ≥ 0.5)`)
  console.log(`    CPU µs per conversion, attributor: ${cpu((r) => r.conversions.cpuUs)}`)
  console.log(`    CPU µs per conversion, durable limit: ${cpu((r) => r.conversionLimit.cpuUs)}`)
  const threads = (pick: (r: Round) => Record<string, number>) =>
    [...new Set(rounds.flatMap((r) => Object.keys(pick(r))))]
      .map((name) => ({ name, us: spread((r) => pick(r)[name] ?? 0, (n) => n.toFixed(1)) }))
      .filter((t) => t.us.median >= 0.5)
      .sort((a, b) => b.us.median - a.us.median)
      .map((t) => `${t.name} ${t.us.text}`)
      .join('; ')
  console.log(`    by thread (main = JavaScript): attributor process ${threads((r) => r.conversions.threadUs)}`)
  console.log(`                                   bench process (sink) ${threads((r) => r.conversions.benchThreadUs)}`)
  console.log(`                                   bench process (durable limit) ${threads((r) => r.conversionLimit.threadUs)}`)
  await writeBenchResult('attributor', [
    {
      measure: 'attributor clicks stored',
      value: Math.round(spread((r) => r.clicks.rate).median),
      unit: 'clicks/s',
      reference: { label: 'durable limit (bare loop, same writes, pipelined)', value: Math.round(spread((r) => r.clickLimit.rate).median) },
      goal: { atLeast: 0.5, of: 'ratio' },
      detail: `${NC} clicks, appendfsync always; medians of ${RUNS} rounds, ratio median ${clickRatio.text}`,
    },
    {
      measure: 'attributor conversions decided, Kafka-acked',
      value: Math.round(spread((r) => r.conversions.rate).median),
      unit: 'conversions/s',
      reference: { label: 'durable limit (bare loop, same writes, pipelined)', value: Math.round(spread((r) => r.conversionLimit.rate).median) },
      goal: { atLeast: 0.5, of: 'ratio' },
      detail: `${N} conversions, appendfsync always, cold lookups of txn_id conversions included; medians of ${RUNS} rounds, ratio median ${conversionRatio.text}`,
    },
  ])
} finally {
  redisInfo.disconnect()
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
