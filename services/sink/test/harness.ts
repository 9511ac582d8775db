import { tmpdir } from 'node:os'
import path from 'node:path'
import { clickHouseTarget, createClickHouse, type ClickHouseClient } from '@clickjoin/clickhouse'
import {
  clickV1Contract,
  encodeEvent,
  outcomeV1Contract,
  postbackV1Contract,
  type ClickV1,
  type OutcomeV1,
  type PostbackV1,
} from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, type Kafka } from '@clickjoin/kafka'
import { tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { afterAll, beforeAll } from 'vitest'
import { sinkConfigFromEnv, type SinkConfig } from '../src/config.ts'
import { createSinkService, type SinkService } from '../src/sink.ts'

const quietLog = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined }

/**
 * Embedded chDB's data directory of this test process. chDB holds one directory per process and
 * refuses a second process on it, and the integration run's two lanes are two processes at once:
 * every sink of this process shares this one, each in its own database.
 */
const processDataDir = path.join(process.env['CLICKJOIN_TEST_DATA_DIR'] ?? tmpdir(), `chdb-${process.pid}`)

/** The environment a sink under test gets: its own topics, group and database. */
export function testSinkEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const { kafkaBrokers, clickhouseUrl } = testStackEnv()
  return {
    KAFKA_BROKERS: kafkaBrokers.join(','),
    KAFKA_TOPIC_PREFIX: `${uniqueName('sink')}.`,
    KAFKA_TOPIC_PARTITIONS: '3',
    SINK_CONSUMER_GROUP: uniqueName('sink-group'),
    CLICKHOUSE_DATABASE: uniqueName('cj_sink'),
    ...(clickhouseUrl ? { CLICKHOUSE_URL: clickhouseUrl } : {}),
    CLICKHOUSE_DATA_DIR: processDataDir,
    PORT: '0',
    CLICKHOUSE_HTTP_PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...overrides,
  }
}

export interface TestSink {
  config: SinkConfig
  sink: SinkService
  kafka: Kafka
  stop(): Promise<void>
}

/** The sink in this process, composed by createSinkService like server.ts, with test config and a quiet log. */
export async function startTestSink(env: Record<string, string>): Promise<TestSink> {
  const config = sinkConfigFromEnv(env)
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'sink-test' })
  const sink = createSinkService(config, { kafka, log: quietLog })
  await sink.start()
  return { config, sink, kafka, stop: () => sink.stop() }
}

/** What most sink suites run against, filled in by their beforeAll. */
export interface SinkSuite {
  readonly config: SinkConfig
  readonly sink: SinkService
  readonly kafka: Kafka
  /** A reader on its own session (settings never shared with the sink's). */
  readonly reader: ClickHouseClient
  /** The suite's database, `config.CLICKHOUSE_DATABASE`. */
  readonly db: string
}

export interface SinkSuiteOptions {
  /** Over testSinkEnv's: the suite's own embedded data directory comes first. */
  env?: Record<string, string>
  /** Embedded chDB even when the run targets a ClickHouse server (what the CLI reads through). */
  embedded?: boolean
  /** Runs once the sink and the reader are up (e.g. `SYSTEM STOP MERGES`). */
  afterStart?(suite: SinkSuite): Promise<unknown>
}

/**
 * Registers the usual beforeAll / afterAll of a sink suite: a sink in this process on its own
 * topics, group and database (in an embedded data directory named after `label`), and a
 * reader; both stopped afterwards. Call it inside the suite's describe (or at file level).
 */
export function sinkSuite(label: string, options: SinkSuiteOptions = {}): SinkSuite {
  let parts: Partial<{ test: TestSink; reader: ClickHouseClient }> = {}
  const part = <K extends keyof typeof parts>(name: K) => {
    const value = parts[name]
    if (value === undefined) throw new Error(`sinkSuite: ${name} is not ready (used outside a test, or its beforeAll failed)`)
    return value as NonNullable<(typeof parts)[K]>
  }
  const suite: SinkSuite = {
    get config() {
      return part('test').config
    },
    get sink() {
      return part('test').sink
    },
    get kafka() {
      return part('test').kafka
    },
    get reader() {
      return part('reader')
    },
    get db() {
      return part('test').config.CLICKHOUSE_DATABASE
    },
  }
  beforeAll(async () => {
    parts = {}
    const env = testSinkEnv({ CLICKHOUSE_DATA_DIR: await tempDir(label), ...options.env })
    if (options.embedded) delete env['CLICKHOUSE_URL']
    parts.test = await startTestSink(env)
    parts.reader = readerFor(parts.test.config)
    await options.afterStart?.(suite)
  })
  afterAll(async () => {
    await parts.test?.stop()
    await parts.reader?.close()
  })
  return suite
}

/** A reader of the same data, on its own session (settings never shared with the sink's). */
export function readerFor(config: SinkConfig): ClickHouseClient {
  return createClickHouse(clickHouseTarget(config.CLICKHOUSE_URL, config.CLICKHOUSE_DATA_DIR))
}

export async function rows<T = Record<string, unknown>>(client: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow' })
  return rs.json<T>()
}

export async function countOf(client: ClickHouseClient, query: string): Promise<number> {
  const [row] = await rows<{ n: string | number }>(client, query)
  return Number(row?.n ?? 0)
}

/** Publishes events with the batching producer, resolving once Kafka acknowledged all. */
export async function produce(
  kafka: Kafka,
  messages: { topic: string; key: string; value: Buffer | string }[],
): Promise<void> {
  const producer = createBatchingProducer(kafka, { lingerMs: 5 })
  await producer.start()
  try {
    await Promise.all(messages.map((m) => producer.send(m.topic, { key: m.key, value: m.value })))
  } finally {
    await producer.stop()
  }
}

export function click(overrides: Partial<ClickV1> & Pick<ClickV1, 'click_id' | 'ts'>): ClickV1 {
  return {
    v: 1,
    campaign_id: 'camp-a',
    publisher_id: 'pub-1',
    sub1: '',
    sub2: '',
    sub3: '',
    sub4: '',
    sub5: '',
    source: 'search',
    creative: 'banner',
    user_key: '',
    ip: '203.0.113.0',
    user_agent: 'Mozilla/5.0',
    referer: '',
    destination: 'https://shop.example/land',
    is_bot: false,
    is_duplicate: false,
    window_seconds: 2_592_000,
    max_window_seconds: 2_592_000,
    ...overrides,
  }
}

export function postback(overrides: Partial<PostbackV1> & Pick<PostbackV1, 'postback_id' | 'click_id'>): PostbackV1 {
  return {
    v: 1,
    received_at: Date.UTC(2026, 10, 20, 15, 0, 0),
    channel: 'postback',
    partner_id: 'partner-x',
    event: 'conversion',
    txn_id: '',
    revenue: '0',
    currency: 'USD',
    status: 'approved',
    conversion_ts: Date.UTC(2026, 10, 20, 15, 0, 0),
    ...overrides,
  }
}

export function outcome(
  overrides: Partial<OutcomeV1> & Pick<OutcomeV1, 'conversion_id' | 'version' | 'click_id'>,
): OutcomeV1 {
  return {
    v: 1,
    postback_id: `pb-${overrides.conversion_id}-${overrides.version}`,
    partner_id: 'partner-x',
    event: 'conversion',
    txn_id: '',
    status: 'approved',
    outcome: 'attributed',
    reason: '',
    campaign_id: 'camp-a',
    publisher_id: 'pub-1',
    sub1: '',
    sub2: '',
    sub3: '',
    sub4: '',
    sub5: '',
    click_ts: Date.UTC(2026, 10, 20, 10, 0, 0),
    conversion_ts: Date.UTC(2026, 10, 20, 16, 0, 0),
    ctit_ms: 6 * 3_600_000,
    revenue: '0',
    payout: '0',
    currency: 'USD',
    is_fast: false,
    updated_at: Date.UTC(2026, 10, 20, 16, 0, 0) + overrides.version * 1000,
    ...overrides,
  }
}

export const encodeClick = (c: ClickV1) => encodeEvent(clickV1Contract, c)
export const encodePostback = (p: PostbackV1) => encodeEvent(postbackV1Contract, p)
export const encodeOutcome = (o: OutcomeV1) => encodeEvent(outcomeV1Contract, o)
