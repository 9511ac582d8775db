/**
 * End-to-end latency at a steady load: CLICKS_PER_S clicks plus POSTBACKS_PER_S postbacks
 * for DURATION_S seconds through the public HTTP interface of a pipeline started as under
 * `npm start` (three processes, local Kafka and Redis, embedded ClickHouse). For each postback:
 * the time from its `200` to its row in `conversions` (the row's `inserted_at`, stamped by
 * ClickHouse at insert, on the same machine's clock). For each click: its HTTP answer time from
 * the moment the open-loop schedule meant to send it (so a stalled load generator shows as
 * latency instead of hiding it), p50/p99 per 5 s and over the full-rate part. The load starts
 * once every service is ready and rises over BENCH_RAMP_S (a slow-start balancer); the ramp's
 * answers are reported apart. Also the CPU each process used at the full rate (from /proc),
 * the load average, and at the end the consumer lag.
 *
 *   node --import tsx bench/pipeline.ts       (BENCH_CLICKS_PER_S 2000, BENCH_POSTBACKS_PER_S 200,
 *                                              BENCH_RAMP_S 10, BENCH_DURATION_S 60;
 *                                              BENCH_SERVICE_ENV='NAME=value,…' for every service)
 *
 * Prints a table and writes bench-results/pipeline.json (gathered by `pnpm bench`).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import { Pool } from 'undici'
import { freePort, startPipeline, startStack } from '@clickjoin/local-stack'
import { coresByThread, cpuSeconds, cpuSecondsByThread, envAssignments, metricSum, sinkInserts, writeBenchResult } from '@clickjoin/local-stack/bench'

const clicksPerSecond = Number(process.env['BENCH_CLICKS_PER_S'] ?? 2_000)
const postbacksPerSecond = Number(process.env['BENCH_POSTBACKS_PER_S'] ?? 200)
const durationS = Number(process.env['BENCH_DURATION_S'] ?? 60)
/**
 * Seconds over which the load rises linearly from 0 to its full rate once every service is
 * ready, as a load balancer's slow start gives a new replica its share of the traffic; the
 * DURATION_S at the full rate follow. Its answers are reported apart, not in the goal's figure.
 */
const rampS = Number(process.env['BENCH_RAMP_S'] ?? 10)
const tickMs = 10
/**
 * Keep-alive connections of the load generator. A visitor does not wait for another visitor's
 * answer, but a request of ours waits for a free connection: with C connections, answers slower
 * than C / rate (64 ms for 128 at 2,000/s) queue every later request in this process.
 */
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 512)
/** A directory: ingest runs with `--cpu-prof` into it (the profile is written when it stops). */
const profileIngestDir = process.env['BENCH_PROFILE_INGEST_DIR']
/** Seconds of the load traced second by second (answers, CPU of every process, ingest's event loop). */
const traceS = Number(process.env['BENCH_TRACE_S'] ?? 20)
/** Seconds of produce load (acks=all, from this process) on the fresh broker before the services start. */
const warmBrokerS = Number(process.env['BENCH_WARM_BROKER_S'] ?? 15)
const adminToken = 'bench-admin-token'
const db = 'bench'
const prefix = `bench_${Date.now().toString(36)}.`
const groups = { attributor: `${prefix}attributor`, sink: `${prefix}sink`, dispatcher: `${prefix}dispatcher` }

/**
 * When the schedule sends the n-th request (ms after the load starts) at `perSecond` once the
 * ramp is over: the rate rises linearly over the first `rampMs`, so n(t) = r·t²/(2·R) then.
 */
function scheduledAtMs(n: number, perSecond: number, rampMs: number): number {
  const r = perSecond / 1_000
  const inRamp = (r * rampMs) / 2
  return n < inRamp ? Math.sqrt((2 * rampMs * n) / r) : rampMs + (n - inRamp) / r
}

/** Requests the schedule has sent by `elapsedMs` (the inverse of scheduledAtMs). */
function scheduledBy(elapsedMs: number, perSecond: number, rampMs: number): number {
  const r = perSecond / 1_000
  return elapsedMs < rampMs ? (r * elapsedMs * elapsedMs) / (2 * rampMs) : (r * rampMs) / 2 + r * (elapsedMs - rampMs)
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function sql<T>(url: string, query: string): Promise<T[]> {
  const res = await fetch(`${url}/?default_format=JSONEachRow`, { method: 'POST', body: query })
  const text = await res.text()
  if (!res.ok) throw new Error(`SQL ${res.status}: ${text}`)
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T)
}

/** Messages each group still has to read, summed over its topics' partitions. */
async function consumerLag(brokers: string[], group: string, topics: string[]): Promise<number> {
  const admin = new Kafka({ brokers, clientId: 'bench-lag', logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    let lag = 0
    const committed = await admin.fetchOffsets({ groupId: group, topics })
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic)
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? []
      for (const end of ends) {
        const at = Number(mine.find((p) => p.partition === end.partition)?.offset ?? -1)
        lag += Number(end.high) - Math.max(at, 0)
      }
    }
    return lag
  } finally {
    await admin.disconnect()
  }
}

/**
 * Waits until every consumer group of the pipeline is Stable with its partitions assigned: a
 * deployed pipeline's consumers have long joined when a new ingest replica gets traffic, while
 * here they join as the services start, and the broker's group coordination (rebalances, first
 * fetches of fresh partitions) competes with the first clicks' produce requests.
 */
async function groupsSettled(brokers: string[], groupIds: string[], timeoutMs: number): Promise<number> {
  const admin = new Kafka({ brokers, clientId: 'bench-groups', logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  const startedAt = performance.now()
  try {
    while (performance.now() - startedAt < timeoutMs) {
      const { groups: described } = await admin.describeGroups(groupIds)
      if (described.length === groupIds.length && described.every((g) => g.state === 'Stable' && g.members.length > 0)) break
      await new Promise((r) => setTimeout(r, 200))
    }
    return performance.now() - startedAt
  } finally {
    await admin.disconnect()
  }
}

/**
 * A broker that has just started answers its first produce requests slowly (JVM code not yet
 * compiled); a deployed broker has been running for days. Produces ~2,000 small messages/s with
 * acks=all to a topic of its own for `seconds`, printing the acks' latency per second.
 */
async function warmBroker(brokers: string[], seconds: number): Promise<void> {
  const kafka = new Kafka({ brokers, clientId: 'bench-warm', logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const topic = `${prefix}warmup`
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const value = Buffer.alloc(600, 'x')
  const startedAt = performance.now()
  for (let second = 1; second <= seconds; second++) {
    const acks: number[] = []
    while (performance.now() - startedAt < second * 1_000) {
      const sentAt = performance.now()
      await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          producer.send({ topic, acks: -1, messages: Array.from({ length: 5 }, (_, j) => ({ key: `k${i}${j}${sentAt}`, value })) }),
        ),
      )
      acks.push(performance.now() - sentAt)
      await new Promise((r) => setTimeout(r, 10))
    }
    acks.sort((a, b) => a - b)
    console.log(`  broker warm-up ${second} s: ${acks.length * 20} messages, ack p50 ${percentile(acks, 50).toFixed(1)} / max ${(acks.at(-1) ?? NaN).toFixed(1)} ms`)
  }
  await producer.disconnect()
}

/**
 * Second by second through the first `seconds` of the load, one line each: clicks answered and
 * still awaited, their p99; from ingest's /metrics the mean time of a click inside ingest, the
 * mean time of a produce batch to its acknowledgement (as ingest sees it: its event loop's
 * delays included), messages per batch, the event loop's largest delay, clicks journaled so far;
 * and the CPU cores of every process (services, broker, Redis, this process) from /proc.
 */
function traceSeconds(o: {
  seconds: number
  startedAt: number
  pids: Record<string, number>
  ingestUrl: string
  sinkUrl: string
  answered: () => number
  awaiting: () => number
  window: number[]
}): { stop(): void } {
  const cpuNow = async () => Object.fromEntries(await Promise.all(Object.entries(o.pids).map(async ([n, pid]) => [n, await cpuSeconds(pid)] as const)))
  const histograms = (text: string) => ({
    clickSum: metricSum(text, 'clickjoin_ingest_http_request_duration_seconds_sum', 'route="/c/'),
    clicks: metricSum(text, 'clickjoin_ingest_http_request_duration_seconds_count', 'route="/c/'),
    ackSum: metricSum(text, 'clickjoin_ingest_kafka_batch_duration_seconds_sum'),
    batches: metricSum(text, 'clickjoin_ingest_kafka_batch_duration_seconds_count'),
    messages: metricSum(text, 'clickjoin_ingest_kafka_batch_messages_sum'),
    gcSeconds: metricSum(text, 'clickjoin_ingest_nodejs_gc_duration_seconds_sum'),
  })
  let last: { at: number; cpu: Record<string, number>; answered: number; h: ReturnType<typeof histograms> & { sqlSum: number; sql: number } } | undefined
  const sample = async () => {
    const at = performance.now()
    const cpu = await cpuNow()
    const text = await fetch(`${o.ingestUrl}/metrics`).then((r) => r.text())
    const sinkText = await fetch(`${o.sinkUrl}/metrics`).then((r) => r.text())
    const h = {
      ...histograms(text),
      sqlSum: metricSum(sinkText, 'clickjoin_sink_sql_http_query_duration_seconds_sum'),
      sql: metricSum(sinkText, 'clickjoin_sink_sql_http_query_duration_seconds_count'),
    }
    const answered = o.answered()
    const window = o.window.splice(0).sort((a, b) => a - b)
    if (last) {
      const p = last
      const perMs = (sum: number, n: number) => (n === 0 ? NaN : (sum / n) * 1_000).toFixed(1)
      const cores = Object.entries(cpu).map(([n, s]) => `${n} ${((s - p.cpu[n]!) / ((at - p.at) / 1_000)).toFixed(2)}`)
      console.log(
        `  t=${String(Math.round((at - o.startedAt) / 1_000)).padStart(2)} s  answered ${answered - p.answered}, awaiting ${o.awaiting()}, ` +
          `p99 ${Math.round(percentile(window, 99))} ms | ingest: click ${perMs(h.clickSum - p.h.clickSum, h.clicks - p.h.clicks)} ms, ` +
          `batch→ack ${perMs(h.ackSum - p.h.ackSum, h.batches - p.h.batches)} ms, ${Math.round((h.messages - p.h.messages) / Math.max(1, h.batches - p.h.batches))}/batch, ` +
          `loop delay max ${Math.round(metricSum(text, 'clickjoin_ingest_nodejs_eventloop_lag_max_seconds') * 1_000)} ms, ` +
          `GC ${Math.round((h.gcSeconds - p.h.gcSeconds) * 1_000)} ms, ` +
          `journaled ${metricSum(text, 'clickjoin_ingest_journal_appended_total')} | sink SQL over HTTP ${h.sql - p.h.sql} queries, ` +
          `${perMs(h.sqlSum - p.h.sqlSum, h.sql - p.h.sql)} ms each | cores: ${cores.join(' ')}`,
      )
    }
    last = { at, cpu, answered, h }
  }
  const timer = setInterval(() => {
    if (performance.now() - o.startedAt > o.seconds * 1_000 + 500) return clearInterval(timer)
    sample().catch((err: unknown) => console.log(`  trace: ${err instanceof Error ? err.message : String(err)}`))
  }, 1_000)
  sample().catch(() => undefined)
  return { stop: () => clearInterval(timer) }
}

const loadAtStart = loadavg()
const dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-bench-e2e-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, log: (l) => console.log(`[stack] ${l}`) })
let pipeline: Awaited<ReturnType<typeof startPipeline>> | undefined
try {
  if (warmBrokerS > 0) await warmBroker(stack.kafkaBrokers, warmBrokerS)
  pipeline = await startPipeline({
    env: {
      ...stack.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      KAFKA_TOPIC_PREFIX: prefix,
      ATTRIBUTOR_GROUP_ID: groups.attributor,
      SINK_CONSUMER_GROUP: groups.sink,
      DISPATCHER_GROUP_ID: groups.dispatcher,
      REDIS_KEY_PREFIX: `${prefix}:`,
      ADMIN_TOKEN: adminToken,
      CLICK_ID_KEYS: '1:bench-click-id-key-0123456789abcdef0123456789',
      CLICKHOUSE_DATABASE: db,
      CLICKHOUSE_DATA_DIR: path.join(dataDir, 'clickhouse'),
      // BENCH_SERVICE_ENV='NAME=value,…': settings for every service, for A/B runs.
      ...envAssignments(process.env['BENCH_SERVICE_ENV'] ?? ''),
    },
    logDir: path.join(dataDir, 'logs'),
    ...(profileIngestDir ? { nodeArgs: { ingest: ['--cpu-prof', `--cpu-prof-dir=${profileIngestDir}`] } } : {}),
    ports: { ingest: await freePort(), attributor: await freePort(), sink: await freePort(), clickhouseHttp: await freePort() },
  })
  const { ingestUrl, sqlUrl } = pipeline
  // Each service is started once the one before it is ready, ingest last: the load starts once all are.
  console.log(`services ready, in starting order: ${pipeline.services.map((s) => `${s.name} ${(s.readyAfterMs / 1_000).toFixed(1)} s`).join(', ')}`)
  const settledMs = await groupsSettled(stack.kafkaBrokers, Object.values(groups), 30_000)
  console.log(`consumer groups stable ${(settledMs / 1_000).toFixed(1)} s after that`)
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }
  for (const [what, body] of [
    ['campaigns/bench', { destination: 'https://shop.example/landing?cid={click_id}', status: 'active', payout: { type: 'cpa', amount: '1' } }],
    ['partners/bench', { secret: 'bench-partner-secret' }],
  ] as const) {
    const res = await fetch(`${ingestUrl}/admin/${what}`, { method: 'PUT', headers, body: JSON.stringify(body) })
    if (!res.ok) throw new Error(`setup ${what}: ${res.status} ${await res.text()}`)
  }

  // A bounded keep-alive pool: the load generator must stay far lighter than what it measures.
  const pool = new Pool(ingestUrl, { connections, pipelining: 1 })
  const recentClicks: string[] = []
  const ackedAt = new Map<string, number>() // txn_id → epoch ms of the 200
  const clickAnswerMs: number[] = [] // scheduled send → answer, every click of the full rate
  const rampClickAnswerMs: number[] = [] // the same, the clicks scheduled during the ramp
  const postbackAnswerMs: number[] = [] // scheduled send → answer, every postback
  const windowClickMs: number[] = [] // the clicks answered in the current 5 s window
  const traceWindow: number[] = [] // the clicks answered in the current second (first traceS s)
  const counts = { clicks: 0, clickErrors: 0, postbacks: 0, postbackErrors: 0 }
  let awaiting = 0
  const inFlight = new Set<Promise<void>>()
  const track = (p: Promise<void>, scheduledAt: number, into: number[]) => {
    awaiting++
    inFlight.add(p)
    void p.finally(() => {
      const ms = performance.now() - scheduledAt
      into.push(ms)
      if (into === clickAnswerMs || into === rampClickAnswerMs) {
        windowClickMs.push(ms)
        traceWindow.push(ms)
      }
      awaiting--
      inFlight.delete(p)
    })
  }
  const sendClick = (n: number, scheduledAt: number) =>
    track(
      pool
        .request({ method: 'GET', path: `/c/bench?pub=p${n % 10}&sub1=s${n}`, headers: { 'user-agent': `Mozilla/5.0 bench-${n % 50}` } })
        .then(
          async (res) => {
            await res.body.dump()
            const location = res.headers['location']
            if (res.statusCode !== 302 || typeof location !== 'string') return void counts.clickErrors++
            counts.clicks++
            recentClicks.push(location.slice(location.indexOf('cid=') + 4, location.indexOf('cid=') + 36))
            if (recentClicks.length > 5_000) recentClicks.splice(0, 1_000)
          },
          () => void counts.clickErrors++,
        ),
      scheduledAt,
      scheduledAt < started + rampS * 1_000 ? rampClickAnswerMs : clickAnswerMs,
    )
  const sendPostback = (n: number, scheduledAt: number) => {
    const clickId = recentClicks[recentClicks.length - 1 - (n % Math.max(1, Math.min(recentClicks.length, 1_000)))]
    if (!clickId) return
    const txn = `t${n}`
    track(
      pool
        .request({ method: 'GET', path: `/postback?click_id=${clickId}&partner=bench&token=bench-partner-secret&txn_id=${txn}&revenue=2.5` })
        .then(
          async (res) => {
            const answeredAt = Date.now()
            await res.body.dump()
            if (res.statusCode !== 200) return void counts.postbackErrors++
            counts.postbacks++
            ackedAt.set(txn, answeredAt)
          },
          () => void counts.postbackErrors++,
        ),
      scheduledAt,
      postbackAnswerMs,
    )
  }

  console.log(`load: rising to ${clicksPerSecond} clicks/s + ${postbacksPerSecond} postbacks/s over ${rampS} s, then ${durationS} s at that rate`)
  const pids = Object.fromEntries(pipeline.services.map((s) => [s.name, s.process.pid]))
  const sinkUrl = `http://127.0.0.1:${pipeline.services.find((s) => s.name === 'sink')!.port}`
  const attributorUrl = `http://127.0.0.1:${pipeline.services.find((s) => s.name === 'attributor')!.port}`
  /**
   * Queries the sink's SQL over HTTP answered; the attributor's cold lookups by operation (calls,
   * each a round's wait) and the SQL queries it sent for them (concurrent conversion calls share one).
   */
  const sqlCounts = async () => {
    const [sinkText, attributorText] = await Promise.all([sinkUrl, attributorUrl].map((url) => fetch(`${url}/metrics`).then((r) => r.text()))) as [string, string]
    return {
      sinkQueries: metricSum(sinkText, 'clickjoin_sink_sql_http_query_duration_seconds_count'),
      sinkQuerySeconds: metricSum(sinkText, 'clickjoin_sink_sql_http_query_duration_seconds_sum'),
      coldClicks: metricSum(attributorText, 'clickjoin_attributor_clickhouse_seconds_count', 'op="cold_clicks"'),
      coldConversions: metricSum(attributorText, 'clickjoin_attributor_clickhouse_seconds_count', 'op="cold_conversions"'),
      coldConversionQueries: metricSum(attributorText, 'clickjoin_attributor_clickhouse_queries_total', 'query="conversions_'),
      coldQueries: metricSum(attributorText, 'clickjoin_attributor_clickhouse_queries_total'),
    }
  }
  /** CPU of each service, its sink threads and inserts: taken when the full rate starts and at the end. */
  const snapshot = async () => ({
    at: performance.now(),
    cpu: Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([name, pid]) => [name, await cpuSeconds(pid)] as const))),
    inserts: await sinkInserts(sinkUrl),
    sinkThreads: await cpuSecondsByThread(pids['sink']!),
    sql: await sqlCounts(),
    clicks: counts.clicks,
    postbacks: counts.postbacks,
  })
  let atFullRate: Promise<Awaited<ReturnType<typeof snapshot>>> | undefined = rampS > 0 ? undefined : snapshot()
  await atFullRate
  const started = performance.now()
  console.log(`load starts at monotonic ${process.hrtime.bigint() / 1_000n} µs (the clock of a --cpu-prof)`)
  const trace = traceSeconds({
    seconds: traceS,
    startedAt: started,
    pids: { ...pids, kafka: stack.pids[0] ?? -1, redis: stack.pids[1] ?? -1, bench: process.pid },
    ingestUrl,
    sinkUrl,
    answered: () => clickAnswerMs.length + rampClickAnswerMs.length,
    awaiting: () => awaiting,
    window: traceWindow,
  })
  let clicksSent = 0
  let postbacksSent = 0
  let nextReport = 5_000
  const rampMs = rampS * 1_000
  while (performance.now() - started < rampMs + durationS * 1_000) {
    const elapsed = performance.now() - started
    if (elapsed >= rampMs) atFullRate ??= snapshot()
    // Open loop: send what the schedule says by now, whatever the answers are doing.
    // Each request is timed from when the schedule meant to send it, not from when this tick did.
    while (clicksSent < scheduledBy(elapsed, clicksPerSecond, rampMs)) sendClick(clicksSent, started + scheduledAtMs(clicksSent++, clicksPerSecond, rampMs))
    while (postbacksSent < scheduledBy(elapsed, postbacksPerSecond, rampMs)) {
      sendPostback(postbacksSent, started + scheduledAtMs(postbacksSent++, postbacksPerSecond, rampMs))
    }
    if (elapsed >= nextReport) {
      const windowEnd = nextReport
      nextReport += 5_000
      const window = windowClickMs.splice(0).sort((a, b) => a - b)
      console.log(
        `  ${(elapsed / 1_000).toFixed(0).padStart(3)} s${windowEnd <= rampMs ? ' (ramp)' : '       '}  clicks ${counts.clicks} (errors ${counts.clickErrors})  ` +
          `postbacks ${counts.postbacks} (errors ${counts.postbackErrors})  awaiting answers ${awaiting}  ` +
          `click answers in these 5 s p50 ${Math.round(percentile(window, 50))} / p99 ${Math.round(percentile(window, 99))} ms  load ${loadavg()[0]!.toFixed(1)}`,
      )
    }
    await new Promise((r) => setTimeout(r, tickMs))
  }
  trace.stop()
  // Over the full-rate part only: the ramp's figures are its own.
  const first = await (atFullRate ?? snapshot())
  const end = await snapshot()
  const sendSeconds = (end.at - first.at) / 1_000
  const cpuUsed = Object.fromEntries(Object.entries(end.cpu).map(([name, s]) => [name, s - first.cpu[name]!] as const))
  const sinkThreads = coresByThread(first.sinkThreads, end.sinkThreads, sendSeconds)
  const loadAtEnd = loadavg()
  const sinkInsertsPerS = (end.inserts.inserts - first.inserts.inserts) / sendSeconds
  const sinkRowsPerInsert = (end.inserts.rows - first.inserts.rows) / Math.max(1, end.inserts.inserts - first.inserts.inserts)
  await Promise.all(inFlight)
  await pool.close()

  // Every acknowledged postback must reach `conversions`; its latency is inserted_at − 200.
  const latencies: number[] = []
  const deadline = Date.now() + 60_000
  let rows: { txn_id: string; inserted_ms: string }[] = []
  while (Date.now() < deadline) {
    rows = await sql(sqlUrl, `SELECT txn_id, toUnixTimestamp64Milli(min(inserted_at)) AS inserted_ms FROM ${db}.conversions WHERE partner_id = 'bench' GROUP BY txn_id`)
    if (rows.length >= ackedAt.size) break
    await new Promise((r) => setTimeout(r, 500))
  }
  for (const row of rows) {
    const acked = ackedAt.get(row.txn_id)
    if (acked !== undefined) latencies.push(Number(row.inserted_ms) - acked)
  }
  latencies.sort((a, b) => a - b)
  clickAnswerMs.sort((a, b) => a - b)
  rampClickAnswerMs.sort((a, b) => a - b)
  postbackAnswerMs.sort((a, b) => a - b)
  const ms = (xs: number[]) => ({ p50: Math.round(percentile(xs, 50)), p99: Math.round(percentile(xs, 99)), max: Math.round(xs.at(-1) ?? NaN) })
  const topics = (names: string[]) => names.map((n) => `${prefix}${n}`)
  const lag = {
    attributor: await consumerLag(stack.kafkaBrokers, groups.attributor, topics(['clicks', 'conversions'])),
    sink: await consumerLag(stack.kafkaBrokers, groups.sink, topics(['clicks', 'conversions', 'outcomes'])),
  }
  const result = {
    machine: `${(await import('node:os')).cpus().length} cores`,
    target: { clicksPerSecond, postbacksPerSecond, durationS, rampS },
    achieved: {
      clicksPerSecond: Math.round((end.clicks - first.clicks) / sendSeconds),
      postbacksPerSecond: Math.round((end.postbacks - first.postbacks) / sendSeconds),
      clickErrors: counts.clickErrors,
      postbackErrors: counts.postbackErrors,
    },
    postbackToConversionMs: {
      found: latencies.length,
      acknowledged: ackedAt.size,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1) ?? NaN,
    },
    clickAnswerMs: ms(clickAnswerMs),
    rampClickAnswerMs: ms(rampClickAnswerMs),
    postbackAnswerMs: ms(postbackAnswerMs),
    cpuCoresUsed: Object.fromEntries(Object.entries(cpuUsed).map(([name, s]) => [name, Number((s / sendSeconds).toFixed(2))])),
    loadAverage: { atStart: loadAtStart[0]!, atEnd: loadAtEnd[0]! },
    sinkCpuCoresByThread: Object.fromEntries(sinkThreads.map(([name, cores]) => [name, Number(cores.toFixed(3))])),
    sinkInserts: { perSecond: Number(sinkInsertsPerS.toFixed(1)), rowsEach: Math.round(sinkRowsPerInsert) },
    sinkSqlOverHttp: {
      queriesPerSecond: Number(((end.sql.sinkQueries - first.sql.sinkQueries) / sendSeconds).toFixed(1)),
      msEach: Number((((end.sql.sinkQuerySeconds - first.sql.sinkQuerySeconds) * 1_000) / Math.max(1, end.sql.sinkQueries - first.sql.sinkQueries)).toFixed(1)),
      attributorColdConversionsPerSecond: Number(((end.sql.coldConversions - first.sql.coldConversions) / sendSeconds).toFixed(1)),
      attributorColdClicksPerSecond: Number(((end.sql.coldClicks - first.sql.coldClicks) / sendSeconds).toFixed(1)),
      attributorColdConversionQueriesPerSecond: Number(((end.sql.coldConversionQueries - first.sql.coldConversionQueries) / sendSeconds).toFixed(1)),
      attributorColdQueriesPerSecond: Number(((end.sql.coldQueries - first.sql.coldQueries) / sendSeconds).toFixed(1)),
    },
    consumerLagAtEnd: lag,
  }
  console.log('')
  console.log('| measure | value |')
  console.log('|---|---|')
  console.log(`| clicks/s achieved (target ${clicksPerSecond}) | ${result.achieved.clicksPerSecond} (errors ${counts.clickErrors}) |`)
  console.log(`| postbacks/s achieved (target ${postbacksPerSecond}) | ${result.achieved.postbacksPerSecond} (errors ${counts.postbackErrors}) |`)
  console.log(`| click HTTP answer during the ${rampS} s ramp, p50 / p99 / max | ${result.rampClickAnswerMs.p50} / ${result.rampClickAnswerMs.p99} / ${result.rampClickAnswerMs.max} ms |`)
  console.log(`| click HTTP answer at the full rate (from its scheduled send), p50 / p99 / max | ${result.clickAnswerMs.p50} / ${result.clickAnswerMs.p99} / ${result.clickAnswerMs.max} ms |`)
  console.log(`| postback HTTP answer (from its scheduled send), p50 / p99 | ${result.postbackAnswerMs.p50} / ${result.postbackAnswerMs.p99} ms |`)
  console.log(`| postbacks found in conversions | ${latencies.length} of ${ackedAt.size} |`)
  console.log(`| postback 200 → row in conversions, p50 | ${result.postbackToConversionMs.p50} ms |`)
  console.log(`| postback 200 → row in conversions, p99 | ${result.postbackToConversionMs.p99} ms |`)
  console.log(`| consumer lag at the end (attributor / sink) | ${lag.attributor} / ${lag.sink} messages |`)
  console.log(`| CPU cores used during the load | ${Object.entries(result.cpuCoresUsed).map(([n, c]) => `${n} ${c}`).join(', ')} |`)
  console.log(`| sink CPU cores by thread (main = Node's JavaScript) | ${sinkThreads.map(([n, c]) => `${n} ${c.toFixed(2)}`).join(', ')} |`)
  console.log(`| sink inserts during the load (all tables) | ${result.sinkInserts.perSecond}/s, ${result.sinkInserts.rowsEach} rows each |`)
  console.log(
    `| sink SQL over HTTP during the load: queries/s, ms each (in the engine) / attributor cold lookups/s: conversion calls (their SQL queries sent), click calls; all its cold-tier SQL queries/s | ` +
      `${result.sinkSqlOverHttp.queriesPerSecond}, ${result.sinkSqlOverHttp.msEach} ms / ${result.sinkSqlOverHttp.attributorColdConversionsPerSecond} ` +
      `(${result.sinkSqlOverHttp.attributorColdConversionQueriesPerSecond}), ${result.sinkSqlOverHttp.attributorColdClicksPerSecond}; ${result.sinkSqlOverHttp.attributorColdQueriesPerSecond} |`,
  )
  console.log(`| load average (1 min) at start / end of the load | ${loadAtStart[0]!.toFixed(1)} / ${loadAtEnd[0]!.toFixed(1)} |`)
  await writeBenchResult('pipeline', [
    {
      measure: `postback 200 → row in conversions, p99 (${clicksPerSecond} clicks/s + ${postbacksPerSecond} postbacks/s, ${durationS} s)`,
      value: result.postbackToConversionMs.p99,
      unit: 'ms',
      goal: { atMost: 2_000, of: 'value' },
      detail: `p50 ${result.postbackToConversionMs.p50} ms; ${latencies.length} of ${ackedAt.size} found; achieved ${result.achieved.clicksPerSecond} clicks/s, ${result.achieved.postbacksPerSecond} postbacks/s; click answers p50 ${result.clickAnswerMs.p50} / p99 ${result.clickAnswerMs.p99} ms; load average ${loadAtStart[0]!.toFixed(1)} → ${loadAtEnd[0]!.toFixed(1)}`,
    },
    {
      measure: `click HTTP answer p99, whole pipeline on the box (${clicksPerSecond} clicks/s + ${postbacksPerSecond} postbacks/s, ${durationS} s at that rate)`,
      value: result.clickAnswerMs.p99,
      unit: 'ms',
      goal: { atMost: 50, of: 'value' },
      detail: `p50 ${result.clickAnswerMs.p50} ms, max ${result.clickAnswerMs.max} ms, timed from the scheduled send, after a ${rampS} s ramp (its p50 ${result.rampClickAnswerMs.p50} / p99 ${result.rampClickAnswerMs.p99} ms); CPU cores ${JSON.stringify(result.cpuCoresUsed)}; load average ${loadAtStart[0]!.toFixed(1)} → ${loadAtEnd[0]!.toFixed(1)}`,
    },
    {
      measure: 'consumer lag at the end (attributor + sink)',
      value: lag.attributor + lag.sink,
      unit: 'messages',
      goal: { atMost: 0, of: 'value' },
    },
  ])
} finally {
  await pipeline?.stop()
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
