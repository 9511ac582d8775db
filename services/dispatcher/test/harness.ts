import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import path from 'node:path'
import { Webhook } from 'standardwebhooks'
import { createPublisherStore, publisherFromInput, type PublisherInput } from '@clickjoin/campaigns'
import {
  decodeEvent,
  encodeEvent,
  outcomeV1Contract,
  postbackDeliveryV1Contract,
  topicNames,
  type OutcomeV1,
  type PostbackDeliveryV1,
  type TopicNames,
} from '@clickjoin/contracts'
import { createBatchingProducer, createKafka, ensurePipelineTopics, type EventProducer } from '@clickjoin/kafka'
import { createRedisClient, redisTargetFromEnv, type RedisClient } from '@clickjoin/redis'
import { startProcess, type ManagedProcess } from '@clickjoin/local-stack'
import { readTopic, tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { loadDispatcherConfig, type DispatcherConfig } from '../src/config.ts'

export const PARTITIONS = 3

/** One test's own topics, Redis keys and consumer group on the shared test stack. */
export interface TestWorld {
  name: string
  brokers: string[]
  redisUrl: string
  topics: TopicNames
  keyPrefix: string
  groupId: string
  redis: RedisClient
  producer: EventProducer
  /** Produces outcome versions as the attributor does (each send resolves on the broker's ack). */
  publishOutcomes(outcomes: OutcomeV1[]): Promise<void>
  putPublisher(id: string, input: PublisherInput): Promise<void>
  /** Every attempt record on the deliveries topic so far. */
  deliveries(): Promise<PostbackDeliveryV1[]>
  env(overrides?: Record<string, string>): Record<string, string>
  config(overrides?: Record<string, string>): DispatcherConfig
  close(): Promise<void>
}

export async function createWorld(label: string): Promise<TestWorld> {
  const stack = testStackEnv()
  const name = uniqueName(label)
  const topics = topicNames(`${name}.`)
  const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: `${label}-test`, log: () => undefined })
  await ensurePipelineTopics(kafka, { topicPrefix: `${name}.`, partitions: PARTITIONS, replicationFactor: 1 })
  const producer = createBatchingProducer(kafka, { lingerMs: 5 })
  await producer.start()
  // REDIS_CLUSTER_NODES when the run uses a cluster (CLICKJOIN_TEST_REDIS=cluster), else the one Redis.
  const redis = createRedisClient(redisTargetFromEnv())
  const keyPrefix = `${name}:`
  const publishers = createPublisherStore({ redis, keyPrefix })
  const env = (overrides: Record<string, string> = {}): Record<string, string> => ({
    KAFKA_BROKERS: stack.kafkaBrokers.join(','),
    KAFKA_TOPIC_PREFIX: `${name}.`,
    KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
    REDIS_URL: stack.redisUrl,
    ...(process.env['REDIS_CLUSTER_NODES'] ? { REDIS_CLUSTER_NODES: process.env['REDIS_CLUSTER_NODES'] } : {}),
    REDIS_KEY_PREFIX: keyPrefix,
    DISPATCHER_GROUP_ID: `${name}-dispatcher`,
    DISPATCHER_SESSION_TIMEOUT_MS: '6000',
    DISPATCH_ALLOW_NETWORKS: '127.0.0.1/32',
    DISPATCH_POLL_INTERVAL_MS: '50',
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    ...overrides,
  })
  return {
    name,
    brokers: stack.kafkaBrokers,
    redisUrl: stack.redisUrl,
    topics,
    keyPrefix,
    groupId: `${name}-dispatcher`,
    redis,
    producer,
    async publishOutcomes(outcomes) {
      await Promise.all(
        outcomes.map((o) => producer.send(topics.outcomes, { key: o.click_id, value: encodeEvent(outcomeV1Contract, o) })),
      )
    },
    putPublisher: (id, input) => publishers.putPublisher(publisherFromInput(id, input)),
    async deliveries() {
      const messages = await readTopic(stack.kafkaBrokers, topics.deliveries)
      return messages.map((m) => {
        const decoded = decodeEvent(postbackDeliveryV1Contract, m.value)
        if (!decoded.ok) throw new Error(`bad delivery record: ${decoded.reason}`)
        return decoded.value
      })
    },
    env,
    config: (overrides) => loadDispatcherConfig(env(overrides)),
    async close() {
      await producer.stop()
      await redis.quit()
    },
  }
}

let sequence = 0

/** An attributed, approved conversion version of `publisher`, with every macro field set. */
export function outcome(publisher: string, overrides: Partial<OutcomeV1> = {}): OutcomeV1 {
  const n = ++sequence
  return {
    v: 1,
    conversion_id: `cv-${n}-${randomBytes(3).toString('hex')}`,
    version: 1,
    postback_id: `pb-${n}`,
    click_id: `clk${n}${randomBytes(4).toString('hex')}`,
    partner_id: 'adv',
    event: 'purchase',
    txn_id: `order ${n}/ü&x`,
    status: 'approved',
    outcome: 'attributed',
    reason: '',
    campaign_id: 'summer',
    publisher_id: publisher,
    sub1: `their id ${n}&=?`,
    sub2: 's2',
    sub3: '',
    sub4: 's4',
    sub5: 'ü',
    click_ts: 1_764_000_000_000,
    conversion_ts: 1_764_000_100_500,
    ctit_ms: 100_500,
    revenue: '49.9',
    payout: '5.25',
    currency: 'EUR',
    is_fast: false,
    updated_at: 1_764_000_101_000,
    ...overrides,
  }
}

export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`

export interface ReceivedCall {
  method: string
  url: URL
  headers: IncomingHttpHeaders
  body: string
  /** What standardwebhooks' own verification said: true, or its error. */
  verified: true | string
}

export type Answer = number | 'hang'

/**
 * A real HTTP receiver on a loopback address: records every call, verifies each signature
 * with the `standardwebhooks` package (an independent implementation), counts connections.
 */
export interface Receiver {
  readonly calls: ReceivedCall[]
  readonly connections: number
  /** Calls held open by a 'hang' answer. */
  readonly hanging: number
  readonly origin: string
  close(): Promise<void>
}

export async function startReceiver(options: {
  host?: string
  /** A fixed port (a receiver that comes back where it was); any free port by default. */
  port?: number
  secret?: string
  answer?: (call: ReceivedCall, index: number) => Answer
}): Promise<Receiver> {
  const calls: ReceivedCall[] = []
  const sockets = new Set<Socket>()
  let connections = 0
  let hanging = 0
  const webhook = options.secret ? new Webhook(options.secret) : undefined
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      let verified: true | string = true
      if (webhook) {
        try {
          webhook.verify(body, req.headers as Record<string, string>)
        } catch (err) {
          verified = String(err)
        }
      }
      const call: ReceivedCall = { method: req.method ?? '', url: new URL(req.url ?? '/', 'http://receiver'), headers: req.headers, body, verified }
      calls.push(call)
      const answer = options.answer?.(call, calls.length - 1) ?? 200
      if (answer === 'hang') {
        hanging++
        return
      }
      res.writeHead(answer, { 'content-type': 'text/plain' }).end('ok')
    })
  })
  server.on('connection', (socket: Socket) => {
    connections++
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  const host = options.host ?? '127.0.0.1'
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    calls,
    get connections() {
      return connections
    },
    get hanging() {
      return hanging
    },
    origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** The dispatcher as its own process (server.ts), for crash tests. */
export async function spawnDispatcher(world: TestWorld, label: string, env: Record<string, string> = {}): Promise<ManagedProcess> {
  const logDir = process.env['DISPATCHER_TEST_LOG_DIR'] ?? (await tempDir('dispatcher-child'))
  return startProcess(label, process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: path.resolve(import.meta.dirname, '..'),
    logFile: path.join(logDir, `${label}.log`),
    env: { ...process.env, ...world.env(env) },
  })
}
