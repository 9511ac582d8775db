import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { topicNames } from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics } from '@clickjoin/kafka'
import { freePort, repoRoot, startProcess, waitUntilReady, type ManagedProcess } from '@clickjoin/local-stack'
import { tempDir, testStackEnv, waitFor } from '@clickjoin/local-stack/testing'
import { click, encodeClick, encodeOutcome, encodePostback, outcome, postback, testSinkEnv } from './harness.ts'

// CI-sized by default and still the minimum: ≥ 100,000 events, ≥ 10 kill -9.
const EVENTS = Number(process.env['SINK_CRASH_EVENTS'] ?? 100_000)
const KILLS = Number(process.env['SINK_CRASH_KILLS'] ?? 10)

describe('sink under kill -9', () => {
  let sink: ManagedProcess | undefined
  let reader: ClickHouseClient | undefined

  afterAll(async () => {
    await reader?.close()
    await sink?.stop()
  })

  it(
    `stores exactly every event of ${EVENTS} while killed ${KILLS} times at random moments`,
    async () => {
      const dataDir = await tempDir('sink-crash')
      const healthPort = await freePort()
      const sqlPort = await freePort()
      const env = testSinkEnv({
        CLICKHOUSE_DATA_DIR: path.join(dataDir, 'clickhouse'),
        PORT: String(healthPort),
        CLICKHOUSE_HTTP_PORT: String(sqlPort),
        // A killed member is evicted after this; the next one then gets its partitions.
        SINK_SESSION_TIMEOUT: '6s',
        SINK_BATCH_MAX_ROWS: '5000',
      })
      const db = env['CLICKHOUSE_DATABASE']!
      const topics = topicNames(env['KAFKA_TOPIC_PREFIX'])
      const kafka = createKafka({ brokers: testStackEnv().kafkaBrokers, clientId: 'crash-test', log: () => undefined })
      await ensureTopics(kafka, Object.values(topics).map((topic) => ({ topic, numPartitions: 3 })))

      // The events: 70% clicks, 10% postbacks, 20% outcomes (each conversion pending, then
      // approved). Every tenth outcome is produced twice, as a redelivery.
      const clickCount = Math.round(EVENTS * 0.7)
      const postbackCount = Math.round(EVENTS * 0.1)
      const conversionCount = Math.ceil((EVENTS - clickCount - postbackCount) / 2.1)
      const messages: { topic: string; key: string; value: Buffer }[] = []
      for (let i = 0; i < clickCount; i++) {
        const id = `k-${i}`
        messages.push({ topic: topics.clicks, key: id, value: encodeClick(click({ click_id: id, ts: Date.UTC(2026, 10, 20) + i })) })
      }
      for (let i = 0; i < postbackCount; i++) {
        const p = postback({ postback_id: `p-${i}`, click_id: `k-${i}`, txn_id: `t-${i}`, revenue: '1.25' })
        messages.push({ topic: topics.conversions, key: p.click_id, value: encodePostback(p) })
      }
      const outcomeMessages: { topic: string; key: string; value: Buffer }[][] = []
      for (let i = 0; i < conversionCount; i++) {
        const base = { conversion_id: `v-${i}`, click_id: `k-${i}`, revenue: '10', conversion_ts: Date.UTC(2026, 10, 20, 12) }
        const pending = encodeOutcome(outcome({ ...base, version: 1, status: 'pending', payout: '0' }))
        const approved = encodeOutcome(outcome({ ...base, version: 2, status: 'approved', payout: '1' }))
        const versions = [pending, approved, ...(i % 10 === 0 ? [approved] : [])]
        outcomeMessages.push(versions.map((value) => ({ topic: topics.outcomes, key: base.click_id, value })))
      }
      const total = messages.length + outcomeMessages.reduce((n, v) => n + v.length, 0)
      expect(total).toBeGreaterThanOrEqual(EVENTS)

      // Producing is spread over the kill phase, so events flow while the sink dies.
      const producer = createBatchingProducer(kafka, { lingerMs: 5 })
      await producer.start()
      const producing = (async () => {
        const chunks = 60
        const perChunk = Math.ceil(messages.length / chunks)
        const outcomesPerChunk = Math.ceil(outcomeMessages.length / chunks)
        for (let c = 0; c < chunks; c++) {
          const chunk = messages.slice(c * perChunk, (c + 1) * perChunk)
          // Versions of one conversion in order: same key, same partition, sent one after another.
          const versions = outcomeMessages.slice(c * outcomesPerChunk, (c + 1) * outcomesPerChunk)
          await Promise.all([
            ...chunk.map((m) => producer.send(m.topic, { key: m.key, value: m.value })),
            (async () => {
              for (let v = 0; v < 3; v++) {
                await Promise.all(versions.flatMap((vs) => (vs[v] ? [producer.send(vs[v]!.topic, { key: vs[v]!.key, value: vs[v]!.value })] : [])))
              }
            })(),
          ])
          await new Promise((resolve) => setTimeout(resolve, 800))
        }
        await producer.stop()
      })()

      const health = (p: string) => fetch(`http://127.0.0.1:${healthPort}${p}`).then((r) => r.ok)
      const start = async (round: number): Promise<ManagedProcess> => {
        const proc = startProcess('sink', process.execPath, ['--import', 'tsx', 'services/sink/src/server.ts'], {
          logFile: path.join(dataDir, `sink-${round}.log`),
          cwd: repoRoot,
          env: { ...process.env, ...env, LOG_LEVEL: 'info' },
        })
        await waitUntilReady(proc, () => health('/healthz'), 60_000, 'health endpoint')
        return proc
      }

      // Offsets the group committed: they advance between kills when the sink stores work.
      const admin = kafka.admin()
      await admin.connect()
      const committed = async () => {
        const offsets = await admin.fetchOffsets({ groupId: env['SINK_CONSUMER_GROUP']!, topics: Object.values(topics) })
        return offsets.flatMap((t) => t.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0)
      }
      const committedAfterKill: number[] = []

      let producingDone = false
      void producing.finally(() => (producingDone = true))
      let kills = 0
      while (kills < KILLS || !producingDone) {
        sink = await start(kills)
        // Half the kills during start-up / rebalance, half while it is consuming and inserting.
        if (kills % 2 === 1) await waitUntilReady(sink, () => health('/readyz'), 60_000, 'group membership')
        await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 2_500))
        await sink.kill()
        kills++
        committedAfterKill.push(await committed())
      }
      await producing
      await admin.disconnect()
      console.log(`[crash] committed offsets after each kill: ${committedAfterKill.join(', ')}`)
      // The sink did store and commit work between the kills, not only after the last start.
      expect(committedAfterKill.at(-1)).toBeGreaterThan(0)

      sink = await start(kills)
      reader = createClient({ url: `http://127.0.0.1:${sqlPort}`, log: { level: ClickHouseLogLevel.OFF } })
      const count = async (sql: string) => {
        const rs = await reader!.query({ query: sql, format: 'JSONEachRow' })
        const [row] = await rs.json<{ n: string }>()
        return Number(row?.n ?? 0)
      }
      await waitFor(
        async () => [
          await count(`SELECT count() AS n FROM ${db}.clicks FINAL`),
          await count(`SELECT count() AS n FROM ${db}.postbacks FINAL`),
          await count(`SELECT countIf(version = 2) AS n FROM ${db}.conversions FINAL`),
        ],
        ([c, p, v]) => c === clickCount && p === postbackCount && v === conversionCount,
        90_000,
        'every event stored',
      )

      // Exactly the expected keys: as many distinct keys as rows under FINAL, all from the
      // produced range, so none is missing and none doubled.
      const keys = async (table: string, key: string) => {
        const rs = await reader!.query({
          query: `SELECT count() AS rows, uniqExact(${key}) AS keys,
                         max(toUInt64(splitByChar('-', ${key})[2])) AS max_index,
                         sum(toUInt64(splitByChar('-', ${key})[2])) AS index_sum
                  FROM ${db}.${table} FINAL`,
          format: 'JSONEachRow',
        })
        const [row] = await rs.json<Record<string, string | number>>()
        return Object.fromEntries(Object.entries(row ?? {}).map(([k, v]) => [k, Number(v)]))
      }
      const expectedKeys = (n: number) => ({ rows: n, keys: n, max_index: n - 1, index_sum: (n * (n - 1)) / 2 })
      expect(await keys('clicks', 'click_id')).toEqual(expectedKeys(clickCount))
      expect(await keys('postbacks', 'postback_id')).toEqual(expectedKeys(postbackCount))
      expect(await keys('conversions', 'conversion_id')).toEqual(expectedKeys(conversionCount))
      expect(await count(`SELECT count() AS n FROM ${db}.conversions FINAL WHERE status != 'approved' OR version != 2`)).toBe(0)
      const report = await reader.query({
        query: `SELECT sum(clicks) AS clicks, sum(conversions) AS conversions, toString(sum(payout)) AS payout FROM ${db}.campaign_report`,
        format: 'JSONEachRow',
      })
      const [totals] = await report.json<{ clicks: string | number; conversions: string | number; payout: string }>()
      expect({ clicks: Number(totals?.clicks), conversions: Number(totals?.conversions), payout: totals?.payout }).toEqual({
        clicks: clickCount,
        conversions: conversionCount,
        payout: String(conversionCount),
      })

      // For the record: rows before merges, i.e. what the insert tokens alone prevented.
      const raw = await count(`SELECT count() AS n FROM ${db}.clicks`)
      console.log(`[crash] ${kills} kills, ${total} events; clicks rows without FINAL: ${raw} (expected ${clickCount})`)
      await sink.stop()
      sink = undefined
    },
    300_000,
  )
})
