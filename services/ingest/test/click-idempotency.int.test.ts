import { afterAll, beforeAll, expect, it } from 'vitest'
import { freePort, startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { tempDir, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { readerFor, rows, startTestSink, testSinkEnv, type TestSink } from '../../sink/test/harness.ts'
import { putCampaign, putPartner, startTestIngest } from './harness.ts'

/**
 * SPEC §2: a POST /clicks batch that failed half-way (503) is retried whole with the same
 * idempotency keys and answers the click IDs minted the first time, each click stored once.
 * Its own broker (stopped on purpose) and a sink into ClickHouse, so the rows are what counts.
 */
const SECRET = 'partner-secret-0123456789'
let broker: KafkaBroker
let dataDir: string
let port: number
let svc: Awaited<ReturnType<typeof startTestIngest>> | undefined
let sink: TestSink | undefined

beforeAll(async () => {
  dataDir = await tempDir('ingest-idempotency')
  port = await freePort()
  broker = await startKafkaBroker({ dataDir, port })
})
afterAll(async () => {
  await svc?.stop().catch(() => undefined)
  await sink?.stop().catch(() => undefined)
  await broker.stop()
})

type Answer = { click_id: string; location: string } | { error: string; message: string }

it('a 1,000-item batch cut by a broker outage and retried whole answers the first click IDs and stores exactly 1,000 clicks', async () => {
  const prefix = uniqueName('idem')
  svc = await startTestIngest({ KAFKA_BROKERS: broker.brokers.join(','), KAFKA_TOPIC_PREFIX: `${prefix}.`, INGEST_KAFKA_ACK_TIMEOUT_MS: '3000' })
  sink = await startTestSink(testSinkEnv({ KAFKA_BROKERS: broker.brokers.join(','), KAFKA_TOPIC_PREFIX: `${prefix}.`, KAFKA_TOPIC_PARTITIONS: '2' }))
  await putPartner(svc, 'net', { secret: SECRET })
  await putCampaign(svc, 'c', { destination: 'https://shop.example/?cid={click_id}', status: 'active' })
  const items = Array.from({ length: 1_000 }, (_, i) => ({ campaign_id: 'c', pub: 'p1', sub1: `s${i}`, ua: `agent-${i}`, idempotency_key: `order-${i}` }))
  const post = (batch: object[]) =>
    svc!.app.inject({ method: 'POST', url: `/clicks?partner=net&token=${SECRET}`, payload: batch })
  const idsOf = (answers: Answer[]) => answers.map((a) => ('click_id' in a ? a.click_id : `error: ${a.message}`))

  // The half that got through before the outage…
  const firstHalf = await post(items.slice(0, 400))
  expect(firstHalf.statusCode).toBe(200)
  const firstIds = idsOf(firstHalf.json<Answer[]>())
  // …and the whole batch while Kafka is down: 503, the partner retries.
  await broker.process.kill()
  const during = await post(items)
  expect(during.statusCode).toBe(503)
  expect(during.json()).toMatchObject({ error: 'unavailable' })

  broker = await startKafkaBroker({ dataDir, port })
  const retried = await waitFor(() => post(items), (res) => res.statusCode === 200, 90_000, 'the retried batch to be accepted')
  const ids = idsOf(retried.json<Answer[]>())
  expect(new Set(ids).size).toBe(1_000)
  expect(ids.slice(0, 400)).toEqual(firstIds)
  // Retried again: the same answers, nothing new recorded.
  expect(idsOf((await post(items)).json<Answer[]>())).toEqual(ids)
  // Another partner's identical keys are its own.
  await putPartner(svc, 'other', { secret: SECRET })
  const other = await svc.app.inject({ method: 'POST', url: `/clicks?partner=other&token=${SECRET}`, payload: items.slice(0, 1) })
  expect(idsOf(other.json<Answer[]>())[0]).not.toBe(ids[0])

  const reader = readerFor(sink.config)
  const db = sink.config.CLICKHOUSE_DATABASE
  try {
    const stored = await waitFor(
      () => rows<{ click_id: string }>(reader, `SELECT click_id FROM ${db}.clicks WHERE campaign_id = 'c' AND publisher_id = 'p1'`).catch(() => []),
      (r) => r.length >= 1_001,
      90_000,
      'the clicks in ClickHouse',
    )
    expect(stored).toHaveLength(1_001)
    expect(new Set(stored.map((r) => r.click_id))).toEqual(new Set([...ids, idsOf(other.json<Answer[]>())[0]]))
  } finally {
    await reader.close()
  }
})
