import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, startKafkaBroker, startProcess, type KafkaBroker, type ManagedProcess } from '@clickjoin/local-stack'
import { readTopic, tempDir, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import type { ClickV1, PostbackV1 } from '@clickjoin/contracts'
import { readerFor, rows, startTestSink, testSinkEnv } from '../../sink/test/harness.ts'
import { adminHeaders, putCampaign, putPartner, startTestIngest, testIngestEnv } from './harness.ts'

// SPEC §2 "When Kafka is unavailable": browser routes keep answering from the local journal,
// S2S routes answer 503; once Kafka is back, every journaled event is in Kafka once.

const SECRET = 'partner-secret-0123456789'
type Service = Awaited<ReturnType<typeof startTestIngest>>
let broker: KafkaBroker
let dataDir: string
let port: number
const services: Service[] = []

beforeAll(async () => {
  dataDir = await tempDir('ingest-kafka-outage')
  port = await freePort()
  broker = await startKafkaBroker({ dataDir, port })
})
// Every test starts with the broker up, also after one that failed while it was down.
beforeEach(async () => {
  if (!broker.process.isRunning()) await restartBroker()
})
afterAll(async () => {
  if (!broker.process.isRunning()) broker = await startKafkaBroker({ dataDir, port })
  for (const svc of services) await svc.stop().catch(() => undefined)
  await broker.stop()
})

async function startIngest(overrides: Record<string, string> = {}): Promise<Service> {
  const svc = await startTestIngest({ KAFKA_BROKERS: broker.brokers.join(','), INGEST_KAFKA_ACK_TIMEOUT_MS: '3000', ...overrides })
  services.push(svc)
  return svc
}

async function setUp(svc: Service): Promise<void> {
  await putPartner(svc, 'net', { secret: SECRET })
  await putCampaign(svc, 'c', { destination: 'https://shop.example/?cid={click_id}', status: 'active', pixel_enabled: true })
}

/** A tracking-link click: its status and the click ID the visitor was sent with. */
async function click(svc: Service): Promise<{ status: number; clickId: string | undefined; retryAfter: string | undefined }> {
  const res = await svc.app.inject({ url: '/c/c?pub=p1', headers: { 'user-agent': `agent-${Math.random()}` } })
  const location = res.headers.location as string | undefined
  return { status: res.statusCode, clickId: location ? new URL(location).searchParams.get('cid')! : undefined, retryAfter: res.headers['retry-after'] as string | undefined }
}

async function readyz(svc: Service): Promise<{ statusCode: number; status: string }> {
  const res = await svc.app.inject({ url: '/readyz' })
  return { statusCode: res.statusCode, status: (res.json() as { status: string }).status }
}

async function metric(svc: Service, name: string): Promise<number> {
  const text = (await svc.app.inject({ url: '/metrics' })).body
  return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
}

/** How many times each click ID is in the clicks topic. */
async function clickCounts(svc: Service): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for (const m of await readTopic(svc.brokers, svc.topics.clicks, 60_000)) {
    const id = (JSON.parse(m.value) as ClickV1).click_id
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

/**
 * Runs a sink over the topics of `topicPrefix` (its own group and database) until every one of
 * `clickIds` is in `clicks`, and answers how many rows each click ID has there — the table
 * itself, not `FINAL`: the sink stores a click once (click-dedup.ts), so copies in the topic
 * must not become rows (docs/schema.md).
 */
async function storedClickCounts(topicPrefix: string, clickIds: readonly string[]): Promise<Map<string, number>> {
  const sink = await startTestSink(testSinkEnv({ KAFKA_BROKERS: broker.brokers.join(','), KAFKA_TOPIC_PREFIX: topicPrefix, KAFKA_TOPIC_PARTITIONS: '2' }))
  const reader = readerFor(sink.config)
  try {
    const wanted = new Set(clickIds)
    const query = `SELECT click_id, count() AS n FROM ${sink.config.CLICKHOUSE_DATABASE}.clicks GROUP BY click_id`
    await waitFor(
      () => rows<{ click_id: string; n: string | number }>(reader, query).catch(() => []),
      (r) => r.filter((row) => wanted.has(row.click_id)).length === wanted.size,
      90_000,
      `${wanted.size} click IDs in clicks`,
    )
    // Once nothing is pending in the sink, a last look also catches a late second row.
    await waitFor(() => sink.sink.writer.pendingRows(), (n) => n === 0, 30_000, 'the sink to settle')
    const stored = await rows<{ click_id: string; n: string | number }>(reader, query)
    return new Map(stored.map((r) => [r.click_id, Number(r.n)]))
  } finally {
    await reader.close()
    await sink.stop()
  }
}

async function restartBroker(): Promise<void> {
  broker = await startKafkaBroker({ dataDir, port })
}

describe('Kafka stopped', () => {
  it('redirects and pixels are answered from the journal, S2S gets 503; back: each journaled event in Kafka once, same IDs', async () => {
    const svc = await startIngest()
    await setUp(svc)
    const before = await click(svc)
    expect(before.status).toBe(302)
    // On a loaded machine Kafka may ack that click later than the fallback, so it is journaled:
    // the outage starts once the journal is empty, and the counts below are of the outage only.
    await waitFor(() => svc.journal.stats().events, (n) => n === 0, 30_000, 'the journal empty before the outage')
    const deliveredBefore = await metric(svc, 'clickjoin_ingest_journal_delivered_total')

    await broker.process.kill()
    const started = Date.now()
    const during = await Promise.all(Array.from({ length: 100 }, () => click(svc)))
    const firstWaveMs = Date.now() - started
    // Later clicks go straight to the journal: no waiting for Kafka at all.
    const laterStarted = Date.now()
    for (let wave = 0; wave < 5; wave++) during.push(...(await Promise.all(Array.from({ length: 40 }, () => click(svc)))))
    const laterMs = Date.now() - laterStarted
    console.log(`Kafka down: first 100 clicks answered within ${firstWaveMs} ms, the next 200 (5 waves) within ${laterMs} ms`)
    for (const res of during) expect(res.status).toBe(302)
    const journaledIds = during.map((r) => r.clickId!)
    expect(new Set(journaledIds).size).toBe(300)

    const pixels = await Promise.all(
      journaledIds.slice(0, 20).map((id, i) => svc.app.inject({ url: `/pixel.gif?campaign=c&click_id=${id}&txn_id=px-${i}` })),
    )
    for (const res of pixels) {
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-clickjoin-result']).toBe('accepted')
    }
    const postback = await svc.app.inject({ url: `/postback?partner=net&token=${SECRET}&click_id=${journaledIds[0]}&txn_id=s2s` })
    expect(postback.statusCode).toBe(503)
    expect(Number(postback.headers['retry-after'])).toBeGreaterThan(0)

    expect(await readyz(svc)).toEqual({ statusCode: 200, status: 'degraded' })
    expect(await metric(svc, 'clickjoin_ingest_journal_events')).toBe(320)
    expect(await metric(svc, 'clickjoin_ingest_journal_bytes')).toBeGreaterThan(320 * 100)
    expect(await metric(svc, 'clickjoin_ingest_journal_oldest_age_seconds')).toBeGreaterThan(0)

    await restartBroker()
    await waitFor(() => svc.journal.stats().events, (n) => n === 0, 90_000, 'the journal to be delivered')
    await waitFor(async () => (await readyz(svc)).status, (s) => s === 'ready', 60_000, '/readyz ready again')
    expect(await metric(svc, 'clickjoin_ingest_journal_delivered_total')).toBe(deliveredBefore + 320)

    const counts = await clickCounts(svc)
    expect(counts.get(before.clickId!)).toBe(1)
    for (const id of journaledIds) expect(counts.get(id), id).toBe(1)
    const pixelIds = (await readTopic(svc.brokers, svc.topics.conversions, 60_000))
      .map((m) => JSON.parse(m.value) as PostbackV1)
      .filter((p) => p.channel === 'pixel')
      .map((p) => p.click_id)
    expect(pixelIds.sort()).toEqual(journaledIds.slice(0, 20).sort())
    // And the direct path is back: a click is acknowledged by Kafka, not journaled.
    const journaledBefore = svc.journal.stats().events
    expect((await click(svc)).status).toBe(302)
    expect(svc.journal.stats().events).toBe(journaledBefore)
  })
})

describe('Kafka frozen (SIGSTOP) for 15 s under a steady click load', () => {
  it('every click gets its 302 within 1 s; after SIGCONT every click ID is in clicks exactly once', async () => {
    const svc = await startIngest()
    await setUp(svc)
    const answers: Array<Promise<{ status: number; clickId: string | undefined; ms: number }>> = []
    const load = async (ms: number) => {
      const until = Date.now() + ms
      while (Date.now() < until) {
        const sent = Date.now()
        answers.push(click(svc).then((r) => ({ ...r, ms: Date.now() - sent })))
        await new Promise((r) => setTimeout(r, 10)) // about 100 clicks/s
      }
    }
    await load(2_000)
    process.kill(broker.process.pid, 'SIGSTOP')
    try {
      await load(15_000)
    } finally {
      process.kill(broker.process.pid, 'SIGCONT')
    }
    await load(2_000)
    const results = await Promise.all(answers)
    const slowest = Math.max(...results.map((r) => r.ms))
    console.log(`SIGSTOP: ${results.length} clicks, slowest answer ${slowest} ms, journaled ${await metric(svc, 'clickjoin_ingest_journal_delivered_total')} so far`)
    for (const r of results) expect(r.status).toBe(302)
    expect(slowest).toBeLessThan(1_000)

    await waitFor(() => svc.journal.stats().events, (n) => n === 0, 120_000, 'the journal to be delivered')
    const messages = await readTopic(svc.brokers, svc.topics.clicks, 60_000)
    const byId = new Map<string, Set<string>>()
    for (const m of messages) {
      const id = (JSON.parse(m.value) as ClickV1).click_id
      byId.set(id, (byId.get(id) ?? new Set()).add(m.value))
    }
    for (const r of results) {
      // Present, and any second copy (a request the frozen broker still held) is byte-identical,
      // so the sink keeps one row per click ID.
      expect(byId.get(r.clickId!)?.size, r.clickId).toBe(1)
    }
    console.log(`topic: ${messages.length} messages for ${byId.size} click IDs (${messages.length - byId.size} identical copies)`)

    // What an analyst counts: each of those click IDs is one row in `clicks`, no other rows.
    const ids = results.map((r) => r.clickId!)
    const stored = await storedClickCounts(svc.config.topicPrefix, ids)
    for (const id of ids) expect(stored.get(id), id).toBe(1)
    expect(stored.size).toBe(ids.length)
  })
})

describe('ingest restarted while its journal holds events', () => {
  it('starts without Kafka, keeps journaling, and delivers everything once Kafka is back', async () => {
    const journalDir = `${await tempDir('restart')}/${uniqueName('journal')}`
    const first = await startIngest({ INGEST_JOURNAL_DIR: journalDir })
    await setUp(first)
    await broker.process.kill()
    const beforeRestart = await Promise.all(Array.from({ length: 50 }, () => click(first)))
    for (const res of beforeRestart) expect(res.status).toBe(302)
    await first.stop()

    // Same replica (same journal directory and topics), Kafka still down.
    const second = await startIngest({ INGEST_JOURNAL_DIR: journalDir, KAFKA_TOPIC_PREFIX: first.config.topicPrefix, REDIS_KEY_PREFIX: first.config.redisKeyPrefix })
    expect(second.journal.stats().events).toBe(50)
    await waitFor(() => second.configStore.campaign('c'), (c) => c !== undefined, 10_000, 'the campaign to load')
    const afterRestart = await Promise.all(Array.from({ length: 30 }, () => click(second)))
    for (const res of afterRestart) expect(res.status).toBe(302)
    expect(await readyz(second)).toEqual({ statusCode: 200, status: 'degraded' })

    await restartBroker()
    await waitFor(() => second.journal.stats().events, (n) => n === 0, 90_000, 'the journal to be delivered')
    const counts = await clickCounts(second)
    for (const res of [...beforeRestart, ...afterRestart]) expect(counts.get(res.clickId!), res.clickId).toBe(1)
    expect(counts.size).toBe(80)
  })
})

describe('kill -9 of ingest during the outage', () => {
  it('the restarted process answers again and delivers what the killed one journaled: each click ID in clicks once', async () => {
    const ingestDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
    const httpPort = await freePort()
    const env = { ...process.env, ...testIngestEnv({ KAFKA_BROKERS: broker.brokers.join(','), PORT: String(httpPort), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }) }
    const base = `http://127.0.0.1:${httpPort}`
    const logFile = path.join(await tempDir('ingest-kill'), 'ingest.log')
    const start = async (): Promise<ManagedProcess> => {
      const child = startProcess('ingest', process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ingestDir, env, logFile })
      await waitFor(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.status, (s) => s === 200, 60_000, 'ingest to listen')
      return child
    }
    const clickOver = async () => {
      const res = await fetch(`${base}/c/c`, { redirect: 'manual', headers: { 'user-agent': `agent-${Math.random()}` } })
      const location = res.headers.get('location')
      return { status: res.status, clickId: location ? new URL(location).searchParams.get('cid')! : undefined }
    }
    let child = await start()
    try {
      const put = await fetch(`${base}/admin/campaigns/c`, {
        method: 'PUT',
        headers: { ...adminHeaders, 'content-type': 'application/json' },
        body: JSON.stringify({ destination: 'https://shop.example/?cid={click_id}', status: 'active' }),
      })
      expect(put.status).toBe(200)
      await broker.process.kill()
      const beforeKill = await Promise.all(Array.from({ length: 60 }, clickOver))
      await child.kill() // SIGKILL: no shutdown, the journal as the last fsync left it
      child = await start()
      await waitFor(async () => (await clickOver()).status, (s) => s === 302, 30_000, 'the restarted ingest to redirect')
      const afterRestart = await Promise.all(Array.from({ length: 30 }, clickOver))
      const all = [...beforeKill, ...afterRestart]
      for (const r of all) expect(r.status).toBe(302)

      await restartBroker()
      const journalEvents = async () => Number(/^clickjoin_ingest_journal_events(?:\{[^}]*\})? (\S+)$/m.exec(await (await fetch(`${base}/metrics`)).text())?.[1])
      await waitFor(journalEvents, (n) => n === 0, 90_000, 'the journal to be delivered')
      const counts = new Map<string, number>()
      const topic = `${env['KAFKA_TOPIC_PREFIX']}clicks`
      for (const m of await readTopic(broker.brokers, topic, 60_000)) {
        const id = (JSON.parse(m.value) as ClickV1).click_id
        counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      for (const r of all) expect(counts.get(r.clickId!), r.clickId).toBe(1)

      const ids = all.map((r) => r.clickId!)
      const stored = await storedClickCounts(env['KAFKA_TOPIC_PREFIX']!, ids)
      for (const id of ids) expect(stored.get(id), id).toBe(1)
      // Beside them only the clicks that probed the restarted process, each once too.
      expect([...stored.values()].filter((n) => n !== 1)).toEqual([])
    } finally {
      await child.stop(10_000)
    }
  })
})

describe('the journal full', () => {
  it('answers 503 with Retry-After beyond INGEST_JOURNAL_MAX_BYTES; what was answered 302 is delivered', async () => {
    const svc = await startIngest({ INGEST_JOURNAL_MAX_BYTES: '20000' })
    await setUp(svc)
    await broker.process.kill()
    const answers: Array<Awaited<ReturnType<typeof click>>> = []
    for (let i = 0; i < 200 && answers.at(-1)?.status !== 503; i++) answers.push(await click(svc))
    const refused = answers.at(-1)!
    expect(refused.status).toBe(503)
    expect(Number(refused.retryAfter)).toBeGreaterThan(0)
    const accepted = answers.filter((a) => a.status === 302)
    expect(accepted.length).toBeGreaterThan(10)
    expect(answers.filter((a) => a.status !== 302 && a.status !== 503)).toEqual([])
    const pixel = await svc.app.inject({ url: `/pixel.gif?campaign=c&click_id=${accepted[0]!.clickId}` })
    expect(pixel.statusCode).toBe(503)
    expect(pixel.headers['retry-after']).toBeDefined()
    expect((await readyz(svc)).statusCode).toBe(503)
    // A visitor refused now and retrying later is not a duplicate: the refused click was never recorded.
    const visitor = { url: '/c/c?format=json', headers: { 'user-agent': 'Mozilla/5.0 retry' }, remoteAddress: '203.0.113.44' }
    const refusedVisitor = await svc.app.inject(visitor)
    expect(refusedVisitor.statusCode).toBe(503)

    await restartBroker()
    await waitFor(() => svc.journal.stats().events, (n) => n === 0, 90_000, 'the journal to be delivered')
    expect((await click(svc)).status).toBe(302)
    const retried = await svc.app.inject(visitor)
    const again = await svc.app.inject(visitor)
    expect([retried.statusCode, again.statusCode]).toEqual([200, 200])
    const counts = await clickCounts(svc)
    for (const res of accepted) expect(counts.get(res.clickId!)).toBe(1)
    const flags = new Map((await readTopic(svc.brokers, svc.topics.clicks)).map((m) => JSON.parse(m.value) as ClickV1).map((c) => [c.click_id, c.is_duplicate]))
    expect(flags.get(retried.json<{ click_id: string }>().click_id)).toBe(false)
    expect(flags.get(again.json<{ click_id: string }>().click_id)).toBe(true)
  })
})
