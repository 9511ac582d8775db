import { describe, expect, it } from 'vitest'
import { decodeEvent, deadLetterV1Contract, topicNames } from '@clickjoin/contracts'
import type { KafkaMessage } from '@clickjoin/kafka'
import { readTopic, waitFor } from '@clickjoin/local-stack/testing'
import {
  click,
  countOf,
  encodeClick,
  encodeOutcome,
  encodePostback,
  outcome,
  postback,
  produce,
  readerFor,
  rows,
  sinkSuite,
  startTestSink,
  testSinkEnv,
} from './harness.ts'

const day1 = (h: number, m = 0) => Date.UTC(2026, 10, 20, h, m, 0)
const day2 = (h: number, m = 0) => Date.UTC(2026, 10, 21, h, m, 0)

// One embedded data directory per process (chDB): the suite's; each sink gets its own database in it.
const suite = sinkSuite('sink-rows', { env: { SINK_RETRY_MAX_BACKOFF: '2s' } })

describe('sink: topics to tables', () => {
  it('stores exactly the events produced, the latest status of each conversion, and a report computed by hand', async () => {
    const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
    const clicks = [
      click({ click_id: 'c1', ts: day1(10), sub1: 'gclid-1' }),
      click({ click_id: 'c2', ts: day1(11) }),
      click({ click_id: 'c3', ts: day1(12), is_bot: true, user_agent: 'Googlebot' }),
      click({ click_id: 'c4', ts: day1(12, 30), is_duplicate: true }),
      click({ click_id: 'c7', ts: day1(14), sub5: 'ü–日本' }),
      click({ click_id: 'c5', ts: day1(13), publisher_id: 'pub-2' }),
      click({ click_id: 'c6', ts: day2(9) }),
    ]
    // c1 delivered twice (a producer retry): still one click.
    const clickMessages = [...clicks, clicks[0]!].map((c) => ({ topic: topics.clicks, key: c.click_id, value: encodeClick(c) }))

    const postbacks = [
      postback({ postback_id: 'pb-1', click_id: 'c1', txn_id: 'T1', revenue: '100', status: 'pending' }),
      postback({ postback_id: 'pb-2', click_id: 'c1', txn_id: 'T1', revenue: '100', status: 'approved', channel: 'api' }),
      postback({ postback_id: 'pb-3', click_id: 'forged!', revenue: '1.5', currency: '', channel: 'pixel', partner_id: '' }),
    ]
    const postbackMessages = postbacks.map((p) => ({ topic: topics.conversions, key: p.click_id, value: encodePostback(p) }))

    const outcomes = [
      // conv-1: pending → approved.
      outcome({ conversion_id: 'conv-1', version: 1, click_id: 'c1', status: 'pending', revenue: '100', payout: '0' }),
      outcome({ conversion_id: 'conv-1', version: 2, click_id: 'c1', status: 'approved', revenue: '100', payout: '10' }),
      // conv-2: pending → approved → rejected (charge-back): not counted.
      outcome({ conversion_id: 'conv-2', version: 1, click_id: 'c2', status: 'pending', revenue: '50', payout: '0' }),
      outcome({ conversion_id: 'conv-2', version: 2, click_id: 'c2', status: 'approved', revenue: '50', payout: '5' }),
      outcome({ conversion_id: 'conv-2', version: 3, click_id: 'c2', status: 'rejected', revenue: '50', payout: '0' }),
      // conv-3 on pub-2, redelivered twice.
      outcome({ conversion_id: 'conv-3', version: 1, click_id: 'c5', publisher_id: 'pub-2', revenue: '20', payout: '2' }),
      outcome({ conversion_id: 'conv-3', version: 1, click_id: 'c5', publisher_id: 'pub-2', revenue: '20', payout: '2' }),
      outcome({ conversion_id: 'conv-3', version: 1, click_id: 'c5', publisher_id: 'pub-2', revenue: '20', payout: '2' }),
      // conv-4: unknown click, rejected.
      outcome({
        conversion_id: 'conv-4',
        version: 1,
        click_id: 'nope',
        outcome: 'rejected',
        reason: 'unknown_click',
        campaign_id: '',
        publisher_id: '',
        click_ts: 0,
        ctit_ms: 0,
        revenue: '7',
      }),
      // conv-5 on day 2.
      outcome({
        conversion_id: 'conv-5',
        version: 1,
        click_id: 'c6',
        click_ts: day2(9),
        conversion_ts: day2(10),
        ctit_ms: 3_600_000,
        revenue: '30',
        payout: '3',
      }),
      // conv-6: versions arrive out of order; the higher one wins.
      outcome({ conversion_id: 'conv-6', version: 2, click_id: 'c1', event: 'signup', revenue: '0', payout: '1.5', is_fast: true }),
      outcome({ conversion_id: 'conv-6', version: 1, click_id: 'c1', event: 'signup', status: 'pending', revenue: '0', payout: '0' }),
    ]
    const outcomeMessages = outcomes.map((o) => ({ topic: topics.outcomes, key: o.click_id, value: encodeOutcome(o) }))

    // Conversions for one key are produced in order (one partition keeps the order).
    for (const message of [...clickMessages, ...postbackMessages]) await produce(suite.kafka, [message])
    await produce(suite.kafka, outcomeMessages.slice(0, 3))
    await produce(suite.kafka, outcomeMessages.slice(3))

    await waitFor(() => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.conversions FINAL`), (n) => n === 6, 30_000, '6 conversions')
    await waitFor(() => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks FINAL`), (n) => n === 7, 30_000, '7 clicks')
    await waitFor(() => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.postbacks FINAL`), (n) => n === 3, 30_000, '3 postbacks')

    expect(
      await rows(
        suite.reader,
        `SELECT click_id, toString(ts) AS ts, campaign_id, publisher_id, sub1, sub5, source, creative, user_key, ip,
                user_agent, referer, destination, is_bot, is_duplicate
         FROM ${suite.db}.clicks FINAL ORDER BY click_id`,
      ),
    ).toEqual(
      [...clicks]
        .sort((a, b) => a.click_id.localeCompare(b.click_id))
        .map((c) => ({
          click_id: c.click_id,
          ts: new Date(c.ts).toISOString().replace('T', ' ').replace('Z', ''),
          campaign_id: c.campaign_id,
          publisher_id: c.publisher_id,
          sub1: c.sub1,
          sub5: c.sub5,
          source: c.source,
          creative: c.creative,
          user_key: c.user_key,
          ip: c.ip,
          user_agent: c.user_agent,
          referer: c.referer,
          destination: c.destination,
          is_bot: c.is_bot ? 1 : 0,
          is_duplicate: c.is_duplicate ? 1 : 0,
        })),
    )

    expect(
      await rows(
        suite.reader,
        `SELECT postback_id, toString(received_at) AS received_at, channel, partner_id, click_id, event, txn_id,
                toString(revenue) AS revenue, currency, status, toString(conversion_ts) AS conversion_ts
         FROM ${suite.db}.postbacks ORDER BY postback_id`,
      ),
    ).toEqual([
      { postback_id: 'pb-1', received_at: '2026-11-20 15:00:00.000', channel: 'postback', partner_id: 'partner-x', click_id: 'c1', event: 'conversion', txn_id: 'T1', revenue: '100', currency: 'USD', status: 'pending', conversion_ts: '2026-11-20 15:00:00.000' },
      { postback_id: 'pb-2', received_at: '2026-11-20 15:00:00.000', channel: 'api', partner_id: 'partner-x', click_id: 'c1', event: 'conversion', txn_id: 'T1', revenue: '100', currency: 'USD', status: 'approved', conversion_ts: '2026-11-20 15:00:00.000' },
      { postback_id: 'pb-3', received_at: '2026-11-20 15:00:00.000', channel: 'pixel', partner_id: '', click_id: 'forged!', event: 'conversion', txn_id: '', revenue: '1.5', currency: '', status: 'approved', conversion_ts: '2026-11-20 15:00:00.000' },
    ])

    expect(
      await rows(
        suite.reader,
        `SELECT conversion_id, version, click_id, event, status, outcome, reason, campaign_id, publisher_id,
                toString(click_ts) AS click_ts, toString(conversion_ts) AS conversion_ts, ctit_ms,
                toString(revenue) AS revenue, toString(payout) AS payout, currency, is_fast
         FROM ${suite.db}.conversions FINAL ORDER BY conversion_id`,
      ),
    ).toEqual([
      { conversion_id: 'conv-1', version: 2, click_id: 'c1', event: 'conversion', status: 'approved', outcome: 'attributed', reason: '', campaign_id: 'camp-a', publisher_id: 'pub-1', click_ts: '2026-11-20 10:00:00.000', conversion_ts: '2026-11-20 16:00:00.000', ctit_ms: 21600000, revenue: '100', payout: '10', currency: 'USD', is_fast: 0 },
      { conversion_id: 'conv-2', version: 3, click_id: 'c2', event: 'conversion', status: 'rejected', outcome: 'attributed', reason: '', campaign_id: 'camp-a', publisher_id: 'pub-1', click_ts: '2026-11-20 10:00:00.000', conversion_ts: '2026-11-20 16:00:00.000', ctit_ms: 21600000, revenue: '50', payout: '0', currency: 'USD', is_fast: 0 },
      { conversion_id: 'conv-3', version: 1, click_id: 'c5', event: 'conversion', status: 'approved', outcome: 'attributed', reason: '', campaign_id: 'camp-a', publisher_id: 'pub-2', click_ts: '2026-11-20 10:00:00.000', conversion_ts: '2026-11-20 16:00:00.000', ctit_ms: 21600000, revenue: '20', payout: '2', currency: 'USD', is_fast: 0 },
      { conversion_id: 'conv-4', version: 1, click_id: 'nope', event: 'conversion', status: 'approved', outcome: 'rejected', reason: 'unknown_click', campaign_id: '', publisher_id: '', click_ts: '1970-01-01 00:00:00.000', conversion_ts: '2026-11-20 16:00:00.000', ctit_ms: 0, revenue: '7', payout: '0', currency: 'USD', is_fast: 0 },
      { conversion_id: 'conv-5', version: 1, click_id: 'c6', event: 'conversion', status: 'approved', outcome: 'attributed', reason: '', campaign_id: 'camp-a', publisher_id: 'pub-1', click_ts: '2026-11-21 09:00:00.000', conversion_ts: '2026-11-21 10:00:00.000', ctit_ms: 3600000, revenue: '30', payout: '3', currency: 'USD', is_fast: 0 },
      { conversion_id: 'conv-6', version: 2, click_id: 'c1', event: 'signup', status: 'approved', outcome: 'attributed', reason: '', campaign_id: 'camp-a', publisher_id: 'pub-1', click_ts: '2026-11-20 10:00:00.000', conversion_ts: '2026-11-20 16:00:00.000', ctit_ms: 21600000, revenue: '0', payout: '1.5', currency: 'USD', is_fast: 1 },
    ])

    // By hand. Day 1, pub-1: clicks c1 c2 c3 c4 c7 = 5; unique (no bot c3, no duplicate c4) = 3;
    // approved+attributed conv-1 (100 / 10) and conv-6 (0 / 1.5), conv-2 charged back = 2;
    // cr = 2/3; epc = 11.5 / 3 = 3.833333. Day 1, pub-2: c5, conv-3 (20 / 2). Day 2: c6, conv-5 (30 / 3).
    expect(
      await rows(
        suite.reader,
        `SELECT toString(day) AS day, campaign_id, publisher_id, clicks, unique_clicks, conversions,
                toString(revenue) AS revenue, toString(payout) AS payout, round(cr, 6) AS cr, toString(epc) AS epc
         FROM ${suite.db}.campaign_report ORDER BY day, publisher_id`,
      ),
    ).toEqual([
      { day: '2026-11-20', campaign_id: 'camp-a', publisher_id: 'pub-1', clicks: 5, unique_clicks: 3, conversions: 2, revenue: '100', payout: '11.5', cr: 0.666667, epc: '3.833333' },
      { day: '2026-11-20', campaign_id: 'camp-a', publisher_id: 'pub-2', clicks: 1, unique_clicks: 1, conversions: 1, revenue: '20', payout: '2', cr: 1, epc: '2' },
      { day: '2026-11-21', campaign_id: 'camp-a', publisher_id: 'pub-1', clicks: 1, unique_clicks: 1, conversions: 1, revenue: '30', payout: '3', cr: 1, epc: '3' },
    ])
  })

  it('sends what it cannot store to the dead-letter topic with the reason, and keeps going', async () => {
    const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
    await produce(suite.kafka, [
      { topic: topics.clicks, key: 'garbage', value: '{"v":1,' },
      { topic: topics.clicks, key: 'bad-field', value: JSON.stringify({ ...click({ click_id: 'bad', ts: day1(1) }), is_bot: 'no' }) },
      { topic: topics.clicks, key: 'far-future', value: encodeClick(click({ click_id: 'future', ts: Date.UTC(2400, 0, 1) })) },
      { topic: topics.clicks, key: 'after', value: encodeClick(click({ click_id: 'after-bad', ts: day1(2) })) },
    ])
    await waitFor(() => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks WHERE click_id = 'after-bad'`), (n) => n === 1, 30_000, 'the good click')
    const deadLetters = await waitFor(() => readTopic(suite.config.KAFKA_BROKERS, topics.deadLetter), (m) => m.length === 3, 30_000, '3 dead letters')
    const reasons = Object.fromEntries(
      deadLetters.map((m) => {
        const decoded = decodeEvent(deadLetterV1Contract, m.value)
        if (!decoded.ok) throw new Error(decoded.reason)
        return [decoded.value.key, { reason: decoded.value.reason, source: decoded.value.source_topic }]
      }),
    )
    expect(reasons['garbage']).toEqual({ source: topics.clicks, reason: expect.stringMatching(/^ClickV1: not valid JSON/) })
    expect(reasons['bad-field']?.reason).toMatch(/^ClickV1: is_bot: Expected boolean/)
    expect(reasons['far-future']?.reason).toMatch(/outside DateTime64/)
    expect(await countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks WHERE click_id IN ('bad', 'future')`)).toBe(0)
  })

  it('stores a replayed partition batch once (insert token), and the natural key collapses a re-read under FINAL', async () => {
    const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
    const batchOf = (first: number, ids: string[]) => ({
      topic: topics.clicks,
      partition: 2,
      messages: ids.map(
        (id, i) =>
          ({
            key: Buffer.from(id),
            value: encodeClick(click({ click_id: id, ts: day1(20), campaign_id: 'replay' })),
            offset: String(first + i),
            timestamp: '0',
            attributes: 0,
            headers: {},
          }) as KafkaMessage,
      ),
      heartbeat: async () => undefined,
      isActive: () => true,
    })
    const ids = Array.from({ length: 500 }, (_, i) => `replay-${i}`)
    const countReplay = (final: string) => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks ${final} WHERE campaign_id = 'replay'`)

    await suite.sink.storePartitionBatch(batchOf(1_000_000, ids))
    await suite.sink.storePartitionBatch(batchOf(1_000_000, ids)) // the same offsets again (crash before commit)
    expect(await countReplay('')).toBe(500) // no FINAL: the second insert was dropped by its token

    // A later insert without a matching token still lands (no setting leaks from the token).
    await suite.sink.storePartitionBatch(batchOf(1_000_500, ['replay-new']))
    expect(await countReplay('')).toBe(501)

    // The same clicks read again under other offsets (e.g. written twice to Kafka): the
    // token differs, so the rows land, and ReplacingMergeTree on the click key collapses them.
    await suite.sink.storePartitionBatch(batchOf(2_000_000, ids))
    expect(await countReplay('FINAL')).toBe(501)
    const report = await rows<{ clicks: string | number }>(suite.reader, `SELECT clicks FROM ${suite.db}.campaign_report WHERE campaign_id = 'replay'`)
    expect(report.map((r) => Number(r.clicks))).toEqual([501])
  })

  it('stops committing while ClickHouse refuses inserts, retries, and catches up without loss or duplicates', async () => {
    const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
    const outageMs = Number(process.env['SINK_OUTAGE_MS'] ?? 30_000)
    const clicksFor = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => {
        const c = click({ click_id: `out-${from + i}`, ts: day2(12) + from + i, campaign_id: 'outage' })
        return { topic: topics.clicks, key: c.click_id, value: encodeClick(c) }
      })
    const stored = (final = '') => countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks ${final} WHERE campaign_id = 'outage'`)
    const admin = suite.kafka.admin()
    await admin.connect()
    const committed = async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: suite.config.SINK_CONSUMER_GROUP, topics: [topics.clicks] })
      return (offsets?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)
    }
    const produced = async () => (await admin.fetchTopicOffsets(topics.clicks)).reduce((n, p) => n + Number(p.high), 0)
    try {
      await produce(suite.kafka, clicksFor(0, 1_000))
      await waitFor(() => stored(), (n) => n === 1_000, 30_000, '1,000 clicks before the outage')
      const highBefore = await produced()
      await waitFor(committed, (n) => n === highBefore, 30_000, 'offsets committed up to the end')

      // ClickHouse fails every insert into clicks (a real engine error, not a mock): the table
      // is away. Not a refusal of the rows' content, which would set them aside (dead-letters.int.test.ts).
      await suite.reader.command({ query: `RENAME TABLE ${suite.db}.clicks TO ${suite.db}.clicks_away` })
      await produce(suite.kafka, clicksFor(1_000, 2_000))
      const outageEnds = Date.now() + outageMs
      const base = `http://127.0.0.1:${suite.sink.port}`
      await waitFor(() => fetch(`${base}/readyz`).then((r) => r.status), (status) => status === 503, 30_000, 'not ready')
      while (Date.now() < outageEnds) {
        expect(await committed()).toBe(highBefore) // nothing committed past what is stored
        await new Promise((resolve) => setTimeout(resolve, 1_000))
      }
      expect(await countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks_away WHERE campaign_id = 'outage'`)).toBe(1_000)
      expect(await (await fetch(`${base}/metrics`)).text()).toMatch(/clickjoin_sink_insert_failures_total\{[^}]*table="clicks"[^}]*\} [1-9]/)

      await suite.reader.command({ query: `RENAME TABLE ${suite.db}.clicks_away TO ${suite.db}.clicks` })
      await waitFor(() => stored(), (n) => n >= 3_000, 60_000, 'caught up')
      await waitFor(committed, (n) => n === highBefore + 2_000, 30_000, 'offsets committed after catching up')
      expect(await stored()).toBe(3_000) // no FINAL: each retried insert landed once
      expect(await stored('FINAL')).toBe(3_000)
      expect(await waitFor(() => fetch(`${base}/readyz`).then((r) => r.status), (status) => status === 200, 30_000, 'ready')).toBe(200)
    } finally {
      await admin.disconnect()
    }
  })

  it('answers /healthz, /readyz and /metrics with rows written per table', async () => {
    const base = `http://127.0.0.1:${suite.sink.port}`
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    const ready = await waitFor(() => fetch(`${base}/readyz`).then((r) => r.status), (s) => s === 200, 30_000, 'ready')
    expect(ready).toBe(200)
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toMatch(/clickjoin_sink_rows_written_total\{[^}]*table="clicks"[^}]*\} \d+/)
    expect(metrics).toMatch(/clickjoin_sink_insert_duration_seconds_bucket/)
    expect(metrics).toMatch(/clickjoin_sink_consumer_lag_messages\{[^}]*topic=/)
    expect(metrics).toMatch(/clickjoin_sink_events_consumed_total\{[^}]*topic=/)
    const names = [...metrics.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!)
    expect(names.filter((name) => !name.startsWith('clickjoin_sink_'))).toEqual([])
    expect(new Set(names).size).toBe(names.length) // no name with two types
  })
})

describe('sink shutdown', () => {
  it('stores and commits what it consumed before it stops, without waiting for the batch timers', async () => {
    const test = await startTestSink(
      testSinkEnv({ CLICKHOUSE_DATA_DIR: suite.config.CLICKHOUSE_DATA_DIR, SINK_BATCH_MAX_WAIT: '10m', SINK_BATCH_QUIET: '10m' }),
    )
    const reader = readerFor(test.config)
    const db = test.config.CLICKHOUSE_DATABASE
    const topics = topicNames(test.config.KAFKA_TOPIC_PREFIX)
    const admin = test.kafka.admin()
    try {
      await produce(
        test.kafka,
        Array.from({ length: 300 }, (_, i) => {
          const c = click({ click_id: `stop-${i}`, ts: day1(8) + i })
          return { topic: topics.clicks, key: c.click_id, value: encodeClick(c) }
        }),
      )
      // Consumed and held in the writer: the timers would hold it for 10 minutes (kafkajs
      // fetches the next round only after this one is stored, so the rest waits in Kafka).
      const held = await waitFor(() => test.sink.writer.pendingRows(), (n) => n > 0, 30_000, 'rows held in the writer')
      expect(await countOf(reader, `SELECT count() AS n FROM ${db}.clicks`)).toBe(0)
      await test.stop()

      // What it held is stored, and committed: exactly the stored rows, no more, no less.
      const stored = await countOf(reader, `SELECT count() AS n FROM ${db}.clicks`)
      expect(stored).toBeGreaterThanOrEqual(held)
      await admin.connect()
      const [offsets] = await admin.fetchOffsets({ groupId: test.config.SINK_CONSUMER_GROUP, topics: [topics.clicks] })
      expect((offsets?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)).toBe(stored)
    } finally {
      await admin.disconnect()
      await reader.close()
    }
  })
})
