/**
 * Clicks at saturation: `GET /c/:id` of ingest (Kafka-acknowledged) next to two references
 * measured in the same run — a bare fastify app answering a fixed 302, a "durable bare"
 * one (fastify + ingest's producer, @platformatic/kafka, acks=all, nothing else) and the same
 * over the kafkajs transport the other services use — swept over connection counts,
 * each measure run BENCH_RUNS times (median, min–max). For each it prints req/s, p99 and the
 * CPU µs per answered request of each process (from /proc: utime + stime), then the best
 * throughput of each server with its p99. Then `POST /postback` once, against a fixed 200.
 *
 *   node --import tsx services/ingest/bench/redirect.ts
 *
 * Starts a local Kafka and Redis. BENCH_CONNECTIONS (50,200,800), BENCH_DURATION_S (8),
 * BENCH_WARMUP_S (2), BENCH_RUNS (3), BENCH_CPU_PROFILE_DIR (a V8 CPU profile of ingest),
 * BENCH_INGEST_ENTRY (another ingest entry under services/ingest, e.g. an older src for an A/B),
 * BENCH_SERVERS (only these, e.g. `durable bare,ingest`: a quick look, no summary). Prints each
 * server's raw answer (status line, headers, bytes) and, after each ingest point, what ingest
 * did besides answering: journal fallbacks by reason, Kafka batches, event-loop delay.
 * BENCH_RATE=<req/s>: every measure at this fixed overall rate instead of as fast as it goes
 * (autocannon's overallRate): CPU per request compared at the same load, not each server at its
 * own saturation (where a server that is never idle amortises its event-loop wake-ups best).
 * BENCH_INGEST_B=<KEY=VALUE,…> (may be empty) runs a second ingest, "ingest B", with these
 * environment variables added (BENCH_INGEST_B_ENTRY: its entry), measured right after
 * "ingest" at every point: an interleaved A/B on the same box in one run.
 */
import autocannon, { type Options } from 'autocannon'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startProcess, startStack, type ManagedProcess } from '@clickjoin/local-stack'
import { cpuSeconds, envAssignments, medianWithRange, writeBenchResult } from '@clickjoin/local-stack/bench'
import { createKafka } from '@clickjoin/kafka'

const connectionCounts = (process.env['BENCH_CONNECTIONS'] ?? '50,200,800').split(',').map(Number)
const duration = Number(process.env['BENCH_DURATION_S'] ?? 8)
const warmup = Number(process.env['BENCH_WARMUP_S'] ?? 2)
const runs = Number(process.env['BENCH_RUNS'] ?? 3)
const connections = connectionCounts[0] ?? 50
const rate = process.env['BENCH_RATE'] ? { overallRate: Number(process.env['BENCH_RATE']) } : {}
const ingestDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const ADMIN_TOKEN = 'bench-admin-token'

async function waitHealthy(url: string, child: ManagedProcess): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (!child.isRunning()) throw new Error(`${child.name} exited: ${await child.exited}`)
    const ok = await fetch(url).then((r) => r.ok, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} not healthy in 60 s`)
}

type Request = Pick<Options, 'method' | 'headers' | 'body'>

interface Server {
  name: string
  url: string
  process: ManagedProcess
}

interface Measure {
  reqPerS: number
  p50: number
  p99: number
  /** CPU µs per answered request, by process label. */
  cpuUsPerRequest: Record<string, number>
  codes: string
}

async function measure(
  server: Server,
  connections: number,
  watched: Record<string, number>,
  request: Request = {},
  atRate: { overallRate?: number } = rate,
): Promise<Measure> {
  if (warmup > 0) await autocannon({ url: server.url, connections, duration: warmup, ...atRate, ...request })
  const pids = { [server.name]: server.process.pid, ...watched }
  const before = Object.fromEntries(await Promise.all(Object.entries(pids).map(async ([k, pid]) => [k, await cpuSeconds(pid)] as const)))
  const result = await autocannon({ url: server.url, connections, duration, ...atRate, ...request })
  const answered = Object.values(result.statusCodeStats).reduce((n, s) => n + s.count, 0)
  const cpuUsPerRequest: Record<string, number> = {}
  for (const [k, pid] of Object.entries(pids)) cpuUsPerRequest[k] = (((await cpuSeconds(pid)) - before[k]!) * 1e6) / Math.max(1, answered)
  const codes = Object.entries(result.statusCodeStats).map(([code, st]) => `${code}×${st.count}`).join(' ')
  return { reqPerS: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpuUsPerRequest, codes: `${codes}; errors ${result.errors}, timeouts ${result.timeouts}` }
}

const median = (xs: number[]) => medianWithRange(xs).median
const spread = (xs: number[], digits = 0) => medianWithRange(xs, (n) => n.toFixed(digits)).text

/** BENCH_RUNS runs of one server at one connection count: the medians. */
async function sweepPoint(server: Server, connections: number, watched: Record<string, number>) {
  const all: Measure[] = []
  for (let i = 0; i < runs; i++) all.push(await measure(server, connections, watched))
  const cpuKeys = Object.keys(all[0]!.cpuUsPerRequest)
  const cpu = Object.fromEntries(cpuKeys.map((k) => [k, median(all.map((m) => m.cpuUsPerRequest[k]!))]))
  console.log(
    `${server.name.padEnd(16)} ${String(connections).padStart(4)} conns  ${spread(all.map((m) => m.reqPerS)).padStart(24)} req/s  p99 ${spread(all.map((m) => m.p99)).padStart(16)} ms  ` +
      `CPU µs/request: ${cpuKeys.map((k) => `${k} ${spread(all.map((m) => m.cpuUsPerRequest[k]!))}`).join(', ')}   [${all.map((m) => m.codes).join(' | ')}]`,
  )
  return { server: server.name, connections, reqPerS: median(all.map((m) => m.reqPerS)), p99: median(all.map((m) => m.p99)), cpu }
}

/** One answer's raw status line and headers as the socket carried them, and its size. */
async function rawAnswer(url: string): Promise<string> {
  const { hostname, port, pathname, search } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}\r\nUser-Agent: Mozilla/5.0 bench\r\n\r\n`)
    })
    let raw = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      raw += chunk
      const end = raw.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.destroy()
      resolve(`${Buffer.byteLength(raw, 'latin1')} bytes:\n    ${raw.slice(0, end).split('\r\n').join('\n    ')}`)
    })
    socket.on('error', reject)
  })
}

/**
 * What ingest did besides answering, since the last call: journal fallbacks, refusals, answers
 * by status, Kafka batches, and its event-loop delay (prom-client resets that at each scrape).
 */
const lastCountersByUrl = new Map<string, Map<string, number>>()
async function printIngestCounters(url: string, label: string): Promise<void> {
  const text = await fetch(url).then((r) => r.text())
  const now = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(\S+?)(\{[^}]*\})? (\S+)$/.exec(line)
    if (m) now.set(`${m[1]}${(m[2] ?? '').replace(/service="ingest",?/, '').replace(/,?\}/, '}').replace('{}', '')}`, Number(m[3]))
  }
  const lastCounters = lastCountersByUrl.get(url) ?? new Map<string, number>()
  const delta = (name: string) => (now.get(name) ?? 0) - (lastCounters.get(name) ?? 0)
  const shown = [...now.keys()]
    .filter((k) => /^clickjoin_ingest_(journal_appended_total|rejects_total|http_requests_total\{route="\/c)/.test(k) && delta(k) > 0)
    .map((k) => `${k.replace('clickjoin_ingest_', '')} +${delta(k)}`)
  const batches = delta('clickjoin_ingest_kafka_batch_messages_count')
  const lag = (q: string) => ((now.get(`clickjoin_ingest_nodejs_eventloop_lag_${q}_seconds`) ?? NaN) * 1000).toFixed(0)
  console.log(
    `  ${label}: ${shown.join(', ') || 'nothing'}; Kafka batches ${batches}, ${(delta('clickjoin_ingest_kafka_batch_messages_sum') / batches).toFixed(1)} messages, ` +
      `${((delta('clickjoin_ingest_kafka_batch_duration_seconds_sum{ok="true"}') / batches) * 1000).toFixed(1)} ms to the ack on average; ` +
      `event-loop delay p99 ${lag('p99')} ms, max ${lag('max')} ms`,
  )
  lastCountersByUrl.set(url, now)
}

const dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-bench-'))
const stack = await startStack({ dataDir, kafkaPort: 0, redisPort: 0, log: (line) => console.log(`[stack] ${line}`) })
const children: ManagedProcess[] = []
try {
  const prefix = `bench_${Date.now().toString(36)}`
  const ingestPort = await freePort()
  const barePort = await freePort()
  /** An ingest process for this bench's topics and keys; `env` on top (another setting for an A/B). */
  const startIngest = (name: string, port: number, entry: string, nodeArgs: string[], env: Record<string, string> = {}) =>
    startProcess(name, process.execPath, [...nodeArgs, '--import', 'tsx', entry], {
      cwd: ingestDir,
      logFile: path.join(dataDir, `${name.replace(/\W+/g, '-')}.log`),
      env: {
        ...process.env,
        ...stack.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        PORT: String(port),
        HOST: '127.0.0.1',
        KAFKA_TOPIC_PREFIX: `${prefix}_`,
        REDIS_KEY_PREFIX: `${prefix}:`,
        ADMIN_TOKEN,
        CLICK_ID_KEYS: '1:bench-click-id-key-0123456789abcdef0123456789',
        KAFKAJS_NO_PARTITIONER_WARNING: '1',
        INGEST_JOURNAL_DIR: path.join(dataDir, `${name.replace(/\W+/g, '-')}-journal`),
        ...env,
      },
    })
  // BENCH_CPU_PROFILE_DIR=<dir>: write a V8 CPU profile of the ingest process there.
  const profile = process.env['BENCH_CPU_PROFILE_DIR'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['BENCH_CPU_PROFILE_DIR']}`] : []
  const ingest = startIngest('ingest', ingestPort, process.env['BENCH_INGEST_ENTRY'] ?? 'src/server.ts', profile)
  children.push(ingest)
  // BENCH_INGEST_B: a second ingest with other settings (or another entry), for an A/B.
  const ingestBEnv = process.env['BENCH_INGEST_B']
  const ingestBPort = await freePort()
  const ingestB =
    ingestBEnv === undefined
      ? undefined
      : startIngest(
          'ingest B',
          ingestBPort,
          process.env['BENCH_INGEST_B_ENTRY'] ?? 'src/server.ts',
          [],
          envAssignments(ingestBEnv),
        )
  if (ingestB) children.push(ingestB)
  const bare = startProcess('bare', process.execPath, ['--import', 'tsx', 'bench/bare-redirect.ts'], {
    cwd: ingestDir,
    logFile: path.join(dataDir, 'bare.log'),
    env: { ...process.env, PORT: String(barePort) },
  })
  children.push(bare)
  await Promise.all([
    waitHealthy(`http://127.0.0.1:${ingestPort}/readyz`, ingest),
    waitHealthy(`http://127.0.0.1:${barePort}/healthz`, bare),
    ...(ingestB ? [waitHealthy(`http://127.0.0.1:${ingestBPort}/readyz`, ingestB)] : []),
  ])
  const put = await fetch(`http://127.0.0.1:${ingestPort}/admin/campaigns/bench`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ destination: 'https://shop.example/landing?click_id={click_id}&pub={pub}', status: 'active' }),
  })
  if (!put.ok) throw new Error(`campaign setup failed: ${put.status} ${await put.text()}`)

  const durablePort = await freePort()
  const durable = startProcess('durable-bare', process.execPath, ['--import', 'tsx', 'bench/durable-bare.ts'], {
    cwd: ingestDir,
    logFile: path.join(dataDir, 'durable-bare.log'),
    env: { ...process.env, ...stack.env, PORT: String(durablePort), BENCH_TOPIC: `${prefix}_clicks`, KAFKAJS_NO_PARTITIONER_WARNING: '1' },
  })
  children.push(durable)
  const durableKjsPort = await freePort()
  const durableKjs = startProcess('durable kafkajs', process.execPath, ['--import', 'tsx', 'bench/durable-bare.ts'], {
    cwd: ingestDir,
    logFile: path.join(dataDir, 'durable-kafkajs.log'),
    env: { ...process.env, ...stack.env, PORT: String(durableKjsPort), BENCH_TOPIC: `${prefix}_clicks`, BENCH_PRODUCER: 'kafkajs', KAFKAJS_NO_PARTITIONER_WARNING: '1' },
  })
  children.push(durableKjs)
  await waitHealthy(`http://127.0.0.1:${durablePort}/healthz`, durable)
  await waitHealthy(`http://127.0.0.1:${durableKjsPort}/healthz`, durableKjs)

  // The other processes whose CPU a click costs: the broker (and Redis, for ingest's pub/sub).
  const watched: Record<string, number> = {}
  for (const pid of stack.pids) {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim()
    watched[comm === 'java' ? 'kafka' : comm.startsWith('redis') ? 'redis' : comm || String(pid)] = pid
  }
  const servers: Server[] = [
    { name: 'bare 302', url: `http://127.0.0.1:${barePort}/c/bench?pub=p1`, process: bare },
    { name: 'durable bare', url: `http://127.0.0.1:${durablePort}/c/bench?pub=p1`, process: durable },
    { name: 'durable kafkajs', url: `http://127.0.0.1:${durableKjsPort}/c/bench?pub=p1`, process: durableKjs },
    { name: 'ingest', url: `http://127.0.0.1:${ingestPort}/c/bench?pub=p1&sub1=s1`, process: ingest },
    ...(ingestB ? [{ name: 'ingest B', url: `http://127.0.0.1:${ingestBPort}/c/bench?pub=p1&sub1=s1`, process: ingestB }] : []),
  ]
  console.log(
    `autocannon from this process: ${connectionCounts.join(', ')} connections, ${runs} runs of ${duration} s (after ${warmup} s warm-up) each; ` +
      `median (min–max); ${stack.sources.kafka} Kafka, ${stack.sources.redis} Redis`,
  )
  // BENCH_SERVERS=ingest,durable bare: measure only these (a quick look at one point); the
  // summary below needs all three of bare 302, durable bare and ingest.
  const only = process.env['BENCH_SERVERS']?.split(',').map((s) => s.trim())
  const measured = only ? servers.filter((sv) => only.includes(sv.name)) : servers
  for (const server of measured) console.log(`${server.name} answers ${await rawAnswer(server.url)}`)
  const points: Array<Awaited<ReturnType<typeof sweepPoint>>> = []
  const ingestMetrics = `http://127.0.0.1:${ingestPort}/metrics`
  await printIngestCounters(ingestMetrics, 'ingest before the sweep')
  for (const c of connectionCounts) {
    for (const server of measured) {
      points.push(await sweepPoint(server, c, watched))
      if (server.process === ingest) await printIngestCounters(ingestMetrics, `ingest at ${c} connections (warm-ups included)`)
      if (ingestB && server.process === ingestB) {
        await printIngestCounters(`http://127.0.0.1:${ingestBPort}/metrics`, `ingest B at ${c} connections (warm-ups included)`)
      }
    }
  }
  if (!only) {
    const best = Object.fromEntries(
      servers.map((sv) => [sv.name, points.filter((p) => p.server === sv.name).sort((a, b) => b.reqPerS - a.reqPerS)[0]!]),
    )
    const ingestResult = best['ingest']!
    const bareResult = best['bare 302']!
    const durableResult = best['durable bare']!
    for (const [name, p] of Object.entries(best)) {
      console.log(`best ${name.padEnd(13)} ${p.reqPerS.toFixed(0).padStart(7)} req/s at ${p.connections} connections, p99 ${p.p99} ms, server CPU ${p.cpu[name]!.toFixed(1)} µs/request`)
    }
    console.log(
      `ingest / durable bare ${(ingestResult.reqPerS / durableResult.reqPerS).toFixed(2)} (goal ≥ 0.8), ingest / bare 302 ${(ingestResult.reqPerS / bareResult.reqPerS).toFixed(2)} (goal ≥ 0.35), ` +
        `ingest CPU per click / bare 302's ${(ingestResult.cpu['ingest']! / bareResult.cpu['bare 302']!).toFixed(2)}× (goal ≤ 2×)`,
    )
    // The same ratio at the same load: the bare 302 held at ingest's best rate and connection
    // count. At its own best point the bare 302 is saturated (it never sleeps, so every
    // event-loop wake-up serves many requests); a server that waits for a broker's ack is not.
    const bareAtIngestRate: Measure[] = []
    for (let i = 0; i < runs; i++) {
      bareAtIngestRate.push(await measure(servers[0]!, ingestResult.connections, watched, {}, { overallRate: Math.round(ingestResult.reqPerS) }))
    }
    const bareCpuAtRate = median(bareAtIngestRate.map((m) => m.cpuUsPerRequest['bare 302']!))
    console.log(
      `bare 302 held at ingest's best rate (${Math.round(ingestResult.reqPerS)} req/s, ${ingestResult.connections} connections): ` +
        `${spread(bareAtIngestRate.map((m) => m.reqPerS))} req/s, CPU ${spread(bareAtIngestRate.map((m) => m.cpuUsPerRequest['bare 302']!), 1)} µs/request; ` +
        `ingest CPU per click / bare 302's at the same rate ${(ingestResult.cpu['ingest']! / bareCpuAtRate).toFixed(2)}×`,
    )

    // Postbacks: JSON bodies with the partner's token, acknowledged by Kafka, vs a fixed 200.
    const partner = await fetch(`http://127.0.0.1:${ingestPort}/admin/partners/bench`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secret: 'bench-partner-secret' }),
    })
    if (!partner.ok) throw new Error(`partner setup failed: ${partner.status} ${await partner.text()}`)
    const postback: Request = {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ click_id: 'bench-click', partner: 'bench', token: 'bench-partner-secret', txn_id: 'o-1', revenue: '1.5' }),
    }
    const barePostback = await measure({ name: 'bare 200', url: `http://127.0.0.1:${barePort}/postback`, process: bare }, connections, watched, postback)
    const ingestPostback = await measure({ name: 'ingest', url: `http://127.0.0.1:${ingestPort}/postback`, process: ingest }, connections, watched, postback)
    for (const [name, m] of [['bare fixed 200', barePostback], ['ingest POST /postback', ingestPostback]] as const) {
      console.log(`${name.padEnd(22)} ${connections} conns  ${m.reqPerS.toFixed(0)} req/s  p50 ${m.p50} ms  p99 ${m.p99} ms  [${m.codes}]`)
    }
    console.log(`ratio ingest/bare: ${(ingestPostback.reqPerS / barePostback.reqPerS).toFixed(2)}`)
    await writeBenchResult('ingest', [
      {
        measure: 'ingest GET /c/:id at saturation, Kafka-acked',
        value: Math.round(ingestResult.reqPerS),
        unit: 'req/s',
        reference: { label: 'durable bare: fastify + same producer', value: Math.round(durableResult.reqPerS) },
        goal: { atLeast: 0.8, of: 'ratio' },
        detail: `at ${ingestResult.connections} connections, p99 ${ingestResult.p99} ms; bare 302 ${Math.round(bareResult.reqPerS)} req/s (ratio ${(ingestResult.reqPerS / bareResult.reqPerS).toFixed(2)}, goal ≥ 0.35)`,
      },
      {
        measure: 'ingest CPU per click (µs, its own process)',
        value: Math.round(ingestResult.cpu['ingest']!),
        unit: 'µs',
        reference: { label: "bare 302's CPU per request", value: Math.round(bareResult.cpu['bare 302']!) },
        goal: { atMost: 2, of: 'ratio' },
        detail:
          `each at its best point; bare 302 held at ingest's rate: ${bareCpuAtRate.toFixed(1)} µs/request, ` +
          `ratio ${(ingestResult.cpu['ingest']! / bareCpuAtRate).toFixed(2)}×`,
      },
      {
        measure: 'ingest POST /postback, Kafka-acked',
        value: Math.round(ingestPostback.reqPerS),
        unit: 'req/s',
        reference: { label: 'bare fastify 200', value: Math.round(barePostback.reqPerS) },
        goal: { atLeast: 0.5, of: 'ratio' },
        detail: `p50 ${ingestPostback.p50} ms, p99 ${ingestPostback.p99} ms (bare: ${barePostback.p50} / ${barePostback.p99} ms)`,
      },
    ])

    const metrics = await fetch(`http://127.0.0.1:${ingestPort}/metrics`).then((r) => r.text())
    const batchSum = Number(/^clickjoin_ingest_kafka_batch_messages_sum\S* (\S+)/m.exec(metrics)?.[1] ?? NaN)
    const batchCount = Number(/^clickjoin_ingest_kafka_batch_messages_count\S* (\S+)/m.exec(metrics)?.[1] ?? NaN)
    const ackSum = Number(/^clickjoin_ingest_kafka_batch_duration_seconds_sum\{[^}]*ok="true"[^}]*\} (\S+)/m.exec(metrics)?.[1] ?? NaN)
    console.log(
      `Kafka batches: ${batchCount}, ${(batchSum / batchCount).toFixed(1)} messages per batch, ` +
        `${((ackSum / batchCount) * 1000).toFixed(1)} ms from send to broker ack on average`,
    )
    // Counted from the partitions' offsets (high minus low watermark): reading millions of
    // messages back ran the bench out of heap (19:51 UTC, ~7 million), and a group's offsets
    // need its coordinator, which a just-created group may not have yet (NOT_COORDINATOR_FOR_GROUP).
    const admin = createKafka({ brokers: stack.kafkaBrokers, clientId: 'bench-count' }).admin()
    await admin.connect()
    const ends = await admin.fetchTopicOffsets(`${prefix}_clicks`)
    await admin.disconnect()
    const stored = ends.reduce((sum, end) => sum + Number(BigInt(end.high) - BigInt(end.low)), 0)
    console.log(`messages in the clicks topic (ingest's and durable bare's, warm-ups included): ${stored}`)
  }
} finally {
  for (const child of children) await child.stop(10_000)
  await stack.stop()
  await rm(dataDir, { recursive: true, force: true })
}
