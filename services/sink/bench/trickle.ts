/**
 * The sink's CPU at a steady trickle, as a process of its own (as under `npm start`): the bench
 * produces BENCH_CLICKS_PER_S clicks, BENCH_POSTBACKS_PER_S postbacks and as many outcomes per
 * second (the pipeline bench's load) for BENCH_DURATION_S seconds after BENCH_WARMUP_S, and
 * reports the sink process's CPU cores over that window (/proc: Node's thread and the embedded
 * engine's threads, also per thread group), its inserts per second and rows per insert, and how
 * long a click took from its send to its row (`inserted_at` − `ts`, p50 / p99).
 *
 *   node --import tsx services/sink/bench/trickle.ts
 *   SINK_BATCH_MIN_INTERVAL=0 node --import tsx services/sink/bench/trickle.ts   # another setting
 *   BENCH_LOOKUPS_PER_S=30 node --import tsx services/sink/bench/trickle.ts       # + the attributor's lookups
 *
 * BENCH_LOOKUPS_PER_S (default 0) also sends the attributor's cold conversion lookup
 * (attributor-lookup.ts, BENCH_IDS_PER_LOOKUP IDs of conversions already produced, a new
 * connection each as the attributor's client) to the sink's SQL over HTTP at that rate: what
 * those lookups add to the sink's CPU at the pipeline's load.
 *
 * The sink's knobs (SINK_*) come from the environment. Uses KAFKA_BROKERS, else starts a
 * throwaway local broker.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { topicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics } from '@clickjoin/kafka'
import { freePort, startKafkaBroker, startService, type KafkaBroker, type RunningService } from '@clickjoin/local-stack'
import { coresByThread, cpuSeconds, cpuSecondsByThread, sinkInserts } from '@clickjoin/local-stack/bench'
import { attributorConversionLookup } from './attributor-lookup.ts'
import { click, encodeClick, encodeOutcome, encodePostback, outcome, postback } from '../test/harness.ts'

const clicksPerS = Number(process.env['BENCH_CLICKS_PER_S'] ?? 2_000)
const postbacksPerS = Number(process.env['BENCH_POSTBACKS_PER_S'] ?? 200)
const warmupS = Number(process.env['BENCH_WARMUP_S'] ?? 5)
const durationS = Number(process.env['BENCH_DURATION_S'] ?? 30)
const partitions = 6
const lookupsPerS = Number(process.env['BENCH_LOOKUPS_PER_S'] ?? 0)
const idsPerLookup = Number(process.env['BENCH_IDS_PER_LOOKUP'] ?? 5)
const dataDir = await mkdtemp(path.join(tmpdir(), 'sink-trickle-'))
let broker: KafkaBroker | undefined
let sink: RunningService | undefined
try {
  const brokers = process.env['KAFKA_BROKERS']
    ? process.env['KAFKA_BROKERS'].split(',')
    : (broker = await startKafkaBroker({ dataDir: path.join(dataDir, 'kafka'), port: 0 })).brokers
  const run = Date.now().toString(36)
  const prefix = `trickle_${run}.`
  const topics = topicNames(prefix)
  const kafka = createKafka({ brokers, clientId: 'sink-trickle', log: () => undefined })
  await ensureTopics(kafka, [topics.clicks, topics.conversions, topics.outcomes].map((topic) => ({ topic, numPartitions: partitions })))
  const sqlPort = await freePort()
  const db = `trickle_${run}`
  sink = await startService(
    { name: 'sink', port: await freePort() },
    {
      env: {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        KAFKA_BROKERS: brokers.join(','),
        KAFKA_TOPIC_PREFIX: prefix,
        KAFKA_TOPIC_PARTITIONS: String(partitions),
        SINK_CONSUMER_GROUP: `trickle_${run}`,
        CLICKHOUSE_DATABASE: db,
        CLICKHOUSE_DATA_DIR: path.join(dataDir, 'clickhouse'),
        CLICKHOUSE_HTTP_PORT: String(sqlPort),
      },
      logDir: path.join(dataDir, 'logs'),
    },
  )
  const sinkUrl = `http://127.0.0.1:${sink.port}`
  const pid = sink.process.pid

  const producer = createBatchingProducer(kafka, { lingerMs: 5 })
  await producer.start()
  let sent = 0
  let failed = 0
  const send = (topic: string, key: string, value: Buffer) =>
    void producer.send(topic, { key, value }).then(
      () => void sent++,
      () => void failed++,
    )
  const id = (kind: string, n: number) => `${kind}${run}${n.toString(36).padStart(8, '0')}`.slice(0, 32)
  let clicks = 0
  let postbacks = 0
  function produceUntil(elapsedS: number): void {
    for (; clicks < elapsedS * clicksPerS; clicks++) {
      const clickId = id('c', clicks)
      send(
        topics.clicks,
        clickId,
        encodeClick(
          click({
            click_id: clickId,
            ts: Date.now(),
            campaign_id: `campaign-${clicks % 20}`,
            publisher_id: `pub-${clicks % 10}`,
            sub1: `s${clicks}`,
            source: '',
            creative: '',
            ip: `203.0.${clicks % 256}.0`,
            user_agent: `Mozilla/5.0 bench-${clicks % 50}`,
            destination: `https://shop.example/landing?cid=${clickId}`,
          }),
        ),
      )
    }
    for (; postbacks < elapsedS * postbacksPerS; postbacks++) {
      const clickId = id('c', Math.max(0, clicks - 1 - (postbacks % 1000)))
      const now = Date.now()
      const postbackId = id('p', postbacks)
      send(
        topics.conversions,
        clickId,
        encodePostback(
          postback({
            postback_id: postbackId,
            click_id: clickId,
            received_at: now,
            partner_id: 'bench',
            txn_id: `t${postbacks}`,
            revenue: '2.5',
            conversion_ts: now,
          }),
        ),
      )
      send(
        topics.outcomes,
        clickId,
        encodeOutcome(
          outcome({
            conversion_id: id('v', postbacks),
            version: 1,
            postback_id: postbackId,
            click_id: clickId,
            partner_id: 'bench',
            txn_id: `t${postbacks}`,
            campaign_id: 'campaign-1',
            click_ts: now - 1_000,
            conversion_ts: now,
            ctit_ms: 1_000,
            revenue: '2.5',
            payout: '1',
            updated_at: now,
          }),
        ),
      )
    }
  }

  let lookupsSent = 0
  const lookups = { answered: 0, failed: 0, ms: 0 }
  function lookUpUntil(elapsedS: number): void {
    for (; lookupsSent < elapsedS * lookupsPerS; lookupsSent++) {
      const ids = Array.from({ length: idsPerLookup }, (_, i) => id('v', Math.max(0, postbacks - 1 - ((lookupsSent * 7 + i * 131) % 2_000))))
      const sentAt = performance.now()
      fetch(`http://127.0.0.1:${sqlPort}/?default_format=JSONEachRow`, {
        method: 'POST',
        body: attributorConversionLookup(db, ids),
        headers: { connection: 'close' },
      })
        .then(async (res) => {
          await res.text()
          if (!res.ok) throw new Error(String(res.status))
          lookups.answered++
          lookups.ms += performance.now() - sentAt
        })
        .catch(() => void lookups.failed++)
    }
  }

  const started = performance.now()
  let window: { at: number; cpu: number; threads: Map<string, number>; inserts: number; rows: number; clicks: number } | undefined
  const loadAtStart = loadavg()[0]!
  for (;;) {
    const elapsedS = (performance.now() - started) / 1_000
    if (elapsedS >= warmupS + durationS) break
    if (!window && elapsedS >= warmupS) {
      window = {
        at: performance.now(),
        cpu: await cpuSeconds(pid),
        threads: await cpuSecondsByThread(pid),
        ...(await sinkInserts(sinkUrl)),
        clicks,
      }
    }
    produceUntil(elapsedS)
    if (lookupsPerS > 0) lookUpUntil(elapsedS)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  if (!window) throw new Error('no measuring window')
  const seconds = (performance.now() - window.at) / 1_000
  const cores = ((await cpuSeconds(pid)) - window.cpu) / seconds
  const threads = coresByThread(window.threads, await cpuSecondsByThread(pid), seconds)
  const atEnd = await sinkInserts(sinkUrl)
  const inserts = atEnd.inserts - window.inserts
  const rows = atEnd.rows - window.rows
  const loadAtEnd = loadavg()[0]!
  await producer.stop()

  // Each click's send → row, for the clicks sent in the window, once all are stored.
  const clickIdsFrom = id('c', window.clicks)
  const query = async (sql: string) => {
    const res = await fetch(`http://127.0.0.1:${sqlPort}/?default_format=JSONEachRow`, { method: 'POST', body: sql })
    if (!res.ok) throw new Error(`SQL ${res.status}: ${await res.text()}`)
    return JSON.parse((await res.text()).trim()) as Record<string, number | string>
  }
  const inWindow = `FROM ${db}.clicks WHERE click_id >= '${clickIdsFrom}'`
  const deadline = Date.now() + 60_000
  while (Number((await query(`SELECT count() AS n ${inWindow}`))['n']) < clicks - window.clicks && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const latency = await query(
    `SELECT count() AS n, quantileExact(0.5)(ms) AS p50, quantileExact(0.99)(ms) AS p99, max(ms) AS max ` +
      `FROM (SELECT toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(ts) AS ms ${inWindow})`,
  )
  const setting = Object.entries(process.env)
    .filter(([k]) => k.startsWith('SINK_'))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')
  console.log(
    [
      `sink at a trickle: ${clicksPerS} clicks/s + ${postbacksPerS} postbacks/s + ${postbacksPerS} outcomes/s, ${seconds.toFixed(1)} s measured after ${warmupS} s; ${setting || 'default settings'}`,
      `produced ${sent} (failed ${failed}); load average ${loadAtStart.toFixed(1)} → ${loadAtEnd.toFixed(1)}`,
      `sink CPU cores ${cores.toFixed(3)}: ${threads.map(([n, c]) => `${n} ${c.toFixed(3)}`).join(', ')}`,
      `CPU µs per event ${Math.round((cores * 1e6) / (clicksPerS + 2 * postbacksPerS))}; inserts ${(inserts / seconds).toFixed(1)}/s, ${Math.round(rows / Math.max(1, inserts))} rows each`,
      `attributor lookups over SQL over HTTP: ${lookupsPerS}/s of ${idsPerLookup} IDs, ${lookups.answered} answered (${lookups.failed} failed), ${(lookups.ms / Math.max(1, lookups.answered)).toFixed(1)} ms each`,
      `click send → row: ${latency['n']} clicks, p50 ${latency['p50']} ms, p99 ${latency['p99']} ms, max ${latency['max']} ms`,
    ].join('\n'),
  )
} finally {
  await sink?.process.stop(60_000)
  await broker?.stop()
  await rm(dataDir, { recursive: true, force: true })
}
