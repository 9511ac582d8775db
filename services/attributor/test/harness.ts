import path from 'node:path'
import { afterAll, beforeAll } from 'vitest'
import { campaignFromInput, createConfigStore, longestWindow, type CampaignInput, type ConfigStore } from '@clickjoin/campaigns'
import { createClickIdKeyring, generateClickId, parseClickIdKeys, type ClickIdKeyring } from '@clickjoin/click-id'
import {
  clickV1Contract,
  conversionPartitionKey,
  decodeEvent,
  encodeEvent,
  outcomeV1Contract,
  postbackV1Contract,
  topicNames,
  type ClickV1,
  type OutcomeV1,
  type PostbackV1,
  type TopicNames,
} from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensureTopics, type EventProducer } from '@clickjoin/kafka'
import { acquireTestRedisCluster, startProcess, type ManagedProcess } from '@clickjoin/local-stack'
import { readTopic, tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { createRedisClient, formatClusterNodes, redisTargetFromEnv, type RedisClient, type RedisClientOptions } from '@clickjoin/redis'
import type { Registry } from 'prom-client'
import { createMetricsRegistry } from '@clickjoin/service-runtime'
import { createColdTierClient } from '../src/cold-tier.ts'
import { createAttributorMetrics } from '../src/metrics.ts'
import { clickLocation } from '../src/redis-state.ts'
import { createAttributorService, type AttributorService, type Log } from '../src/service.ts'
import { startTestSink, testSinkEnv, type TestSink } from '../../sink/test/harness.ts'

/** The click ID key the tests sign with, also handed to attributor child processes. */
export const TEST_CLICK_ID_KEYS = '7:attributor-test-click-id-secret-0123456789abcdef'
export const testKeyring: ClickIdKeyring = createClickIdKeyring({ keys: parseClickIdKeys(TEST_CLICK_ID_KEYS), currentKeyId: 7 })

export const PARTITIONS = 3

const ALL_REDIS_TARGETS = ['redis', 'cluster'] as const
export type RedisTargetName = (typeof ALL_REDIS_TARGETS)[number]

/**
 * Every attributor suite runs against both kinds of Redis: the stack's single server
 * ('redis') and the run's 3-primary Redis Cluster ('cluster'). CLICKJOIN_TEST_REDIS_TARGETS
 * (a comma list) keeps some: the Docker run of scripts/docker-ci.sh tests the stack's
 * containerised Redis only, the cluster having run in the main run already.
 */
export const REDIS_TARGETS: readonly RedisTargetName[] = redisTargetsFromEnv(process.env['CLICKJOIN_TEST_REDIS_TARGETS'])

function redisTargetsFromEnv(value: string | undefined): readonly RedisTargetName[] {
  if (!value) return ALL_REDIS_TARGETS
  const wanted = value.split(',').map((t) => t.trim())
  const unknown = wanted.filter((t) => !(ALL_REDIS_TARGETS as readonly string[]).includes(t))
  if (unknown.length > 0) throw new Error(`CLICKJOIN_TEST_REDIS_TARGETS: unknown target ${unknown.join(', ')} (known: ${ALL_REDIS_TARGETS.join(', ')})`)
  return ALL_REDIS_TARGETS.filter((t) => wanted.includes(t))
}
export type RedisTarget = Pick<RedisClientOptions, 'url' | 'clusterNodes'>

async function redisTargetNamed(name: RedisTargetName): Promise<RedisTarget> {
  // The stack's Redis (itself a cluster in a CLICKJOIN_TEST_REDIS=cluster run).
  if (name === 'redis') return redisTargetFromEnv()
  const { nodes } = await acquireTestRedisCluster(await tempDir('attributor-cluster'))
  return { clusterNodes: nodes.join(',') }
}

/** A client on the world's Redis (or `target`), configured as the service configures its own. */
export function connectRedis(target: RedisTarget): RedisClient {
  const client = createRedisClient({ ...target, enableAutoPipelining: true })
  client.on('error', () => undefined)
  return client
}

/** REDIS_URL and REDIS_CLUSTER_NODES for a child process (the other one emptied). */
export function redisEnv(target: RedisTarget): Record<string, string> {
  const nodes = target.clusterNodes
  return {
    REDIS_URL: target.url ?? '',
    REDIS_CLUSTER_NODES: nodes === undefined ? '' : typeof nodes === 'string' ? nodes : formatClusterNodes(nodes),
  }
}

const quietLog: Log = { info: () => undefined, warn: () => undefined, error: (obj, msg) => console.error(msg, obj) }

/** One isolated world: its own topics, Redis keys, consumer group and ClickHouse database. */
export interface TestWorld {
  name: string
  topics: TopicNames
  keyPrefix: string
  groupId: string
  brokers: string[]
  /** Which Redis the world's attributors use: the stack's server or the cluster. */
  redis: RedisTarget
  /** Where the attributor reads the cold tier: this world's sink (SQL endpoint) or CLICKHOUSE_URL. */
  clickhouseUrl: string
  database: string
  sink: TestSink
  /** Stops this world's sink. */
  stop(): Promise<void>
}

/**
 * Creates the world's topics and starts its sink in this process (the cold tier: clicks and
 * conversions older than the hot period are read from the ClickHouse the sink fills).
 */
export async function createWorld(label: string, redisTarget: RedisTargetName = 'redis'): Promise<TestWorld> {
  const { kafkaBrokers } = testStackEnv()
  const redis = await redisTargetNamed(redisTarget)
  const name = uniqueName(label)
  const topics = topicNames(`${name}.`)
  const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'attributor-test-setup' })
  await ensureTopics(kafka, Object.values(topics).map((topic) => ({ topic, numPartitions: PARTITIONS })))
  const database = name.replace(/[^A-Za-z0-9_]/g, '_')
  const sink = await startTestSink(
    testSinkEnv({
      KAFKA_TOPIC_PREFIX: `${name}.`,
      KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
      SINK_CONSUMER_GROUP: `${name}-sink`,
      CLICKHOUSE_DATABASE: database,
    }),
  )
  const clickhouseUrl = sink.config.CLICKHOUSE_URL ?? `http://127.0.0.1:${sink.sink.sqlPort}`
  return {
    name,
    topics,
    keyPrefix: `${name}:`,
    groupId: `${name}-attributor`,
    brokers: kafkaBrokers,
    redis,
    clickhouseUrl,
    database,
    sink,
    stop: () => sink.stop(),
  }
}

/** Writes campaigns the way ingest's admin API does: through the config store. */
export async function putCampaigns(world: TestWorld, campaigns: Record<string, CampaignInput>, target = world.redis): Promise<void> {
  const redis = connectRedis(target)
  const subscriber = connectRedis(target)
  try {
    const store = createConfigStore({ redis, subscriber, keyPrefix: world.keyPrefix })
    for (const [id, input] of Object.entries(campaigns)) await store.putCampaign(campaignFromInput(id, input))
  } finally {
    redis.disconnect()
    subscriber.disconnect()
  }
}

export interface InProcessAttributor {
  attributor: AttributorService
  configStore: ConfigStore
  registry: Registry
  stop(): Promise<void>
}

export interface AttributorTestOptions {
  graceMs?: number
  /** Another Redis than the world's. */
  redis?: RedisTarget
  hotSeconds?: number
  /** Beyond the hot period in Redis (default 1 h, as the service's own default). */
  ttlMarginSeconds?: number
}

/** The attributor as server.ts composes it (createAttributorService), with test settings. */
export async function startAttributor(world: TestWorld, options: AttributorTestOptions = {}): Promise<InProcessAttributor> {
  const target = options.redis ?? world.redis
  const kafka = { brokers: world.brokers, clientId: 'attributor-test', log: () => undefined }
  const redis = connectRedis(target)
  const subscriber = connectRedis(target)
  const clickhouse = createColdTierClient(world.clickhouseUrl)
  const registry = createMetricsRegistry('attributor')
  const attributor = createAttributorService(
    {
      topics: world.topics,
      partitions: PARTITIONS,
      redisKeyPrefix: world.keyPrefix,
      groupId: world.groupId,
      graceMs: options.graceMs ?? 2_000,
      sweepIntervalMs: 100,
      hotSeconds: options.hotSeconds ?? 172_800,
      ttlMarginSeconds: options.ttlMarginSeconds ?? 3_600,
      clickhouseDatabase: world.database,
      partitionsConsumedConcurrently: 4,
      coldLagProbeIntervalMs: 1_000,
    },
    { kafka, redis, subscriber, clickhouse, keyring: testKeyring, metrics: createAttributorMetrics(registry), log: quietLog },
  )
  await attributor.start()
  let stopping: Promise<void> | undefined
  return {
    attributor,
    configStore: attributor.configStore,
    registry,
    // Once: a second stop (a test's, then its afterAll's) must not send commands to closed
    // clients (a closed Cluster client queues them forever instead of failing them).
    stop: () =>
      (stopping ??= (async () => {
        await attributor.stop()
        await clickhouse.close()
        redis.disconnect()
        subscriber.disconnect()
      })()),
  }
}

/** The attributor as its own process (`node --import tsx src/server.ts`), for kill -9. */
export async function spawnAttributor(
  world: TestWorld,
  options: { graceMs?: number; label: string; redis?: RedisTarget; env?: Record<string, string>; nodeArgs?: string[] },
): Promise<ManagedProcess> {
  const serviceDir = path.resolve(import.meta.dirname, '..')
  const logDir = process.env['ATTRIBUTOR_TEST_LOG_DIR'] ?? (await tempDir('attributor-child'))
  return startProcess(options.label, process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/server.ts'], {
    cwd: serviceDir,
    logFile: path.join(logDir, `${options.label}.log`),
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: '0',
      HOST: '127.0.0.1',
      KAFKA_BROKERS: world.brokers.join(','),
      KAFKA_TOPIC_PREFIX: `${world.name}.`,
      KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
      ...redisEnv(options.redis ?? world.redis),
      REDIS_KEY_PREFIX: world.keyPrefix,
      CLICK_ID_KEYS: TEST_CLICK_ID_KEYS,
      ATTRIBUTION_GRACE_MS: String(options.graceMs ?? 2_000),
      ATTRIBUTOR_GROUP_ID: world.groupId,
      ATTRIBUTOR_SWEEP_INTERVAL_MS: '100',
      CLICKHOUSE_URL: world.clickhouseUrl,
      CLICKHOUSE_DATABASE: world.database,
      ...options.env,
    },
  })
}

/** Produces clicks and postbacks as ingest does: batched, each send resolving on the broker ack. */
export async function createEventWriter(world: TestWorld) {
  const kafka = createKafka({ brokers: world.brokers, clientId: 'attributor-test-writer', log: () => undefined })
  const producer: EventProducer = createBatchingProducer(kafka, { lingerMs: 5 })
  await producer.start()
  return {
    clicks: (clicks: ClickV1[]) =>
      Promise.all(clicks.map((c) => producer.send(world.topics.clicks, { key: c.click_id, value: encodeEvent(clickV1Contract, c) }))),
    postbacks: (postbacks: PostbackV1[]) =>
      Promise.all(
        postbacks.map((p) =>
          producer.send(world.topics.conversions, { key: conversionPartitionKey(p), value: encodeEvent(postbackV1Contract, p) }),
        ),
      ),
    raw: (topic: string, key: string, value: string) => producer.send(topic, { key, value }),
    stop: () => producer.stop(),
  }
}

let sequence = 0

/** A click on `campaignId` at `ts`, with a real click ID minted at that time. */
export function makeClick(campaignId: string, campaign: CampaignInput, ts: number, changes: Partial<ClickV1> = {}): ClickV1 {
  const stored = campaignFromInput(campaignId, campaign)
  return {
    v: 1,
    click_id: generateClickId(testKeyring, ts),
    ts,
    campaign_id: campaignId,
    publisher_id: 'pub-1',
    sub1: '',
    sub2: '',
    sub3: '',
    sub4: '',
    sub5: '',
    source: '',
    creative: '',
    user_key: '',
    ip: '203.0.113.0',
    user_agent: 'Mozilla/5.0',
    referer: '',
    destination: stored.destination,
    is_bot: false,
    is_duplicate: false,
    window_seconds: stored.window_seconds,
    max_window_seconds: longestWindow(stored),
    ...changes,
  }
}

export function makePostback(clickId: string, conversionTs: number, changes: Partial<PostbackV1> = {}): PostbackV1 {
  sequence++
  return {
    v: 1,
    postback_id: `pb-${process.pid}-${Date.now().toString(36)}-${sequence}`,
    received_at: Date.now(),
    channel: 'postback',
    partner_id: 'acme',
    click_id: clickId,
    event: 'conversion',
    txn_id: '',
    revenue: '0',
    currency: '',
    status: 'approved',
    conversion_ts: conversionTs,
    ...changes,
  }
}

export interface OutcomeMessage {
  key: string | undefined
  raw: string
  outcome: OutcomeV1
}

export async function readOutcomes(world: TestWorld): Promise<OutcomeMessage[]> {
  const messages = await readTopic(world.brokers, world.topics.outcomes)
  return messages.map((m) => {
    const decoded = decodeEvent(outcomeV1Contract, m.value)
    if (!decoded.ok) throw new Error(`outcome message does not match OutcomeV1: ${decoded.reason}`)
    return { key: m.key, raw: m.value, outcome: decoded.value }
  })
}

/** The latest version of each conversion, as the sink's ReplacingMergeTree would keep it. */
export function latestByConversion(messages: OutcomeMessage[]): Map<string, OutcomeV1> {
  const latest = new Map<string, OutcomeV1>()
  for (const { outcome } of messages) {
    const seen = latest.get(outcome.conversion_id)
    if (!seen || seen.version < outcome.version) latest.set(outcome.conversion_id, outcome)
  }
  return latest
}

/** Every repeated (conversion_id, version) message must be byte-identical to the first. */
export function assertRepeatsIdentical(messages: OutcomeMessage[]): { distinct: number; repeats: number } {
  const first = new Map<string, string>()
  let repeats = 0
  for (const m of messages) {
    const id = `${m.outcome.conversion_id}#${m.outcome.version}`
    const seen = first.get(id)
    if (seen === undefined) first.set(id, m.raw)
    else {
      repeats++
      if (seen !== m.raw) throw new Error(`outcome ${id} was published with different content:\n${seen}\n${m.raw}`)
    }
  }
  return { distinct: first.size, repeats }
}

/** How many of these clicks Redis holds in its hot tier (their bucket fields). */
export async function clicksInRedis(redis: RedisClient, world: TestWorld, clickIds: readonly string[]): Promise<number> {
  const found = await Promise.all(
    clickIds.map((id) => {
      const { key, field } = clickLocation(world.keyPrefix, id)
      return redis.hexists(key, field)
    }),
  )
  return found.filter((f) => f === 1).length
}

export type EventWriter = Awaited<ReturnType<typeof createEventWriter>>

/** What most attributor suites run against, filled in by their beforeAll. */
export interface AttributorSuite {
  readonly world: TestWorld
  readonly attributor: InProcessAttributor
  readonly writer: EventWriter
  /** A client on the world's Redis, for what a test checks there. */
  readonly redis: RedisClient
}

/**
 * Registers the usual beforeAll / afterAll of a suite: a world on `target` with these
 * campaigns, one in-process attributor (`options`), an event writer and a Redis client; all
 * stopped afterwards in reverse. Call it inside the suite's describe.
 */
export function attributorSuite(
  label: string,
  target: RedisTargetName,
  campaigns: Record<string, CampaignInput>,
  options: AttributorTestOptions = {},
): AttributorSuite {
  let parts: Partial<{ world: TestWorld; attributor: InProcessAttributor; writer: EventWriter; redis: RedisClient }> = {}
  beforeAll(async () => {
    parts = {}
    parts.world = await createWorld(label, target)
    await putCampaigns(parts.world, campaigns)
    parts.redis = connectRedis(parts.world.redis)
    parts.attributor = await startAttributor(parts.world, options)
    parts.writer = await createEventWriter(parts.world)
  })
  afterAll(async () => {
    await parts.writer?.stop()
    await parts.attributor?.stop()
    parts.redis?.disconnect()
    await parts.world?.stop()
  })
  const part = <K extends keyof typeof parts>(name: K) => {
    const value = parts[name]
    if (value === undefined) throw new Error(`attributorSuite: ${name} is not ready (used outside a test, or its beforeAll failed)`)
    return value as NonNullable<(typeof parts)[K]>
  }
  return {
    get world() {
      return part('world')
    },
    get attributor() {
      return part('attributor')
    },
    get writer() {
      return part('writer')
    },
    get redis() {
      return part('redis')
    },
  }
}

/** The attributor group's members, to know when an instance has taken over the partitions. */
export async function groupMembers(world: TestWorld): Promise<{ stable: boolean; members: string[] }> {
  const admin = createKafka({ brokers: world.brokers, clientId: 'attributor-test-group', log: () => undefined }).admin()
  await admin.connect()
  try {
    const { groups } = await admin.describeGroups([world.groupId])
    const group = groups[0]
    return { stable: group?.state === 'Stable', members: (group?.members ?? []).map((m) => m.memberId) }
  } finally {
    await admin.disconnect()
  }
}
