import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { topicNames } from '@clickjoin/contracts'
import { repoRoot } from '@clickjoin/local-stack'
import { waitFor } from '@clickjoin/local-stack/testing'
import { click, countOf, encodeClick, produce, rows, sinkSuite } from './harness.ts'

/**
 * SPEC §6: a row ClickHouse refuses for its content (a CHECK constraint here: a real engine
 * refusal) goes to `dead_letters` and its partition moves on; so does a message no contract
 * reads. `clickjoin dead-letters` lists them and replays the chosen one after the fix.
 */
const suite = sinkSuite('sink-dead-letters', {
  env: { KAFKA_TOPIC_PARTITIONS: '1', DEAD_LETTERS_TTL_DAYS: '30' },
  embedded: true, // the CLI reads through the embedded SQL endpoint
})

it('sets a refused row aside in dead_letters, moves on, and replays it with the CLI once the constraint is dropped', async () => {
  const topics = topicNames(suite.config.KAFKA_TOPIC_PREFIX)
  const at = Date.UTC(2026, 10, 22, 10)
  const message = (id: string, i: number) => ({ topic: topics.clicks, key: id, value: encodeClick(click({ click_id: id, ts: at + i, campaign_id: 'dl' })) })
  await suite.reader.command({ query: `ALTER TABLE ${suite.db}.clicks ADD CONSTRAINT no_poison CHECK NOT startsWith(click_id, 'poison')` })

  await produce(suite.kafka, [message('ok-1', 1), message('poison-1', 2), message('ok-2', 3)])
  await produce(suite.kafka, [{ topic: topics.clicks, key: 'garbled', value: 'not an event' }])
  const clickIds = () => rows<{ click_id: string }>(suite.reader, `SELECT click_id FROM ${suite.db}.clicks WHERE campaign_id = 'dl' ORDER BY click_id`).then((r) => r.map((x) => x.click_id))
  expect(await waitFor(clickIds, (ids) => ids.length === 2, 30_000, 'the two good clicks')).toEqual(['ok-1', 'ok-2'])

  type DeadLetter = { source_topic: string; partition: number; offset: string; key: string; reason: string; payload: string }
  const deadLetters = () => rows<DeadLetter>(suite.reader, `SELECT source_topic, partition, toString(offset) AS offset, key, reason, payload FROM ${suite.db}.dead_letters FINAL ORDER BY offset`)
  const letters = await waitFor(deadLetters, (r) => r.length === 2, 30_000, 'two dead letters')
  expect(letters[0]).toMatchObject({ source_topic: topics.clicks, partition: 0, offset: '1', key: 'poison-1' })
  expect(letters[0]!.reason).toMatch(/ClickHouse refused the row for clicks: .*no_poison/)
  expect(JSON.parse(letters[0]!.payload)).toMatchObject({ click_id: 'poison-1' })
  expect(letters[1]).toMatchObject({ source_topic: topics.clicks, offset: '3', key: 'garbled', payload: 'not an event' })

  // The partition moved on: a later click is stored, and every offset is committed.
  await produce(suite.kafka, [message('ok-3', 4)])
  await waitFor(clickIds, (ids) => ids.includes('ok-3'), 30_000, 'a click after the refused one')
  const admin = suite.kafka.admin()
  await admin.connect()
  try {
    const committed = async () => {
      const [offsets] = await admin.fetchOffsets({ groupId: suite.config.SINK_CONSUMER_GROUP, topics: [topics.clicks] })
      return Number(offsets?.partitions[0]?.offset ?? -1)
    }
    await waitFor(committed, (n) => n === 5, 30_000, 'offsets committed past the refused row')
  } finally {
    await admin.disconnect()
  }

  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', ...args], {
      cwd: repoRoot,
      env: {
        ...process.env,
        CLICKHOUSE_URL: `http://127.0.0.1:${suite.sink.sqlPort}`,
        CLICKHOUSE_DATABASE: suite.db,
        KAFKA_BROKERS: suite.config.KAFKA_BROKERS.join(','),
      },
    }).then((r) => r.stdout)
  const poisonId = `${topics.clicks}/0/1`
  const listed = await cli('dead-letters', 'list')
  expect(listed).toContain(poisonId)
  expect(listed).toContain(`${topics.clicks}/0/3`)
  await expect(cli('dead-letters', 'replay', `${topics.clicks}/0/99`)).rejects.toMatchObject({ stderr: expect.stringMatching(/no such dead letter/) as unknown })

  await suite.reader.command({ query: `ALTER TABLE ${suite.db}.clicks DROP CONSTRAINT no_poison` })
  expect(await cli('dead-letters', 'replay', poisonId)).toContain(`replayed ${poisonId}`)
  expect(await waitFor(clickIds, (ids) => ids.length === 4, 30_000, 'the replayed click')).toEqual(['ok-1', 'ok-2', 'ok-3', 'poison-1'])
  expect(await countOf(suite.reader, `SELECT count() AS n FROM ${suite.db}.clicks WHERE click_id = 'poison-1'`)).toBe(1)
})

it('keeps dead letters DEAD_LETTERS_TTL_DAYS days', async () => {
  const [table] = await rows<{ engine_full: string }>(suite.reader, `SELECT engine_full FROM system.tables WHERE database = '${suite.db}' AND name = 'dead_letters'`)
  expect(table?.engine_full).toContain('TTL toDateTime(received_at) + toIntervalDay(30)')
})
