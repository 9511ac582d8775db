import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { tempDir, testStackEnv, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import type { Kafka } from 'kafkajs'
import { createKafka } from './client.ts'
import { createBatchConsumer } from './consumer.ts'
import { createBatchingProducer } from './producer.ts'
import { ensureTopics } from './topics.ts'

describe('batch consumer', () => {
  it('commits only what the handler finished: a failed batch is redelivered, a new member resumes after the last commit', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('consume')
    const groupId = uniqueName('group')
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'test-consumer' })
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    const producer = createBatchingProducer(kafka)
    await producer.start()
    const sendAll = (from: number, to: number) =>
      Promise.all(Array.from({ length: to - from }, (_, i) => producer.send(topic, { key: `k${(from + i) % 7}`, value: `m${from + i}` })))
    await sendAll(0, 300)

    // First member: fails once on its first batch, then processes everything.
    const processed: string[] = []
    let failures = 0
    const first = createBatchConsumer(kafka, {
      groupId,
      topics: [topic],
      handleBatch: async (batch) => {
        if (failures === 0) {
          failures++
          throw new Error('simulated failure before anything was stored')
        }
        for (const m of batch.messages) processed.push(m.value!.toString())
      },
    })
    await first.start()
    await waitFor(() => new Set(processed).size, (n) => n === 300, 30_000, '300 distinct messages')
    expect(failures).toBe(1)
    expect(first.health().ok).toBe(true)
    await first.stop()

    // Second member of the same group sees only what was produced after the commits.
    await sendAll(300, 400)
    const second: string[] = []
    const next = createBatchConsumer(kafka, {
      groupId,
      topics: [topic],
      handleBatch: async (batch) => {
        for (const m of batch.messages) second.push(m.value!.toString())
      },
    })
    await next.start()
    await waitFor(() => second.length, (n) => n >= 100, 30_000, '100 new messages')
    await next.stop()
    await producer.stop()

    expect(second.sort()).toEqual(Array.from({ length: 100 }, (_, i) => `m${300 + i}`).sort())
  })
})

describe('batch consumer with deferred commits', () => {
  /** The group's committed offset of each partition (-1: none). */
  async function committed(kafka: Kafka, groupId: string, topic: string): Promise<Map<number, number>> {
    const admin = kafka.admin()
    await admin.connect()
    try {
      const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] })
      return new Map(offsets!.partitions.map((p) => [p.partition, Number(p.offset)]))
    } finally {
      await admin.disconnect()
    }
  }
  const produce = async (kafka: Kafka, topic: string, partition: number, values: string[]) => {
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: values.map((value) => ({ partition, value })) })
    await producer.disconnect()
  }
  const holder = () => {
    let release!: () => void
    const stored = new Promise<void>((resolve) => (release = resolve))
    return { stored, release }
  }

  it('fetches on while a batch is being stored, and commits each partition in order once its batches are stored', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('deferred')
    const groupId = uniqueName('group')
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'test-deferred' })
    await ensureTopics(kafka, [{ topic, numPartitions: 1 }])
    const batches: { first: string; last: string; release(): void }[] = []
    const consumer = createBatchConsumer(kafka, {
      groupId,
      topics: [topic],
      maxWaitTimeMs: 100,
      handleBatch: async (batch) => {
        const { stored, release } = holder()
        batches.push({ first: batch.messages[0]!.offset, last: batch.messages.at(-1)!.offset, release })
        return { stored }
      },
    })
    await consumer.start()
    await produce(kafka, topic, 0, ['a0', 'a1', 'a2'])
    await waitFor(() => batches.length, (n) => n === 1, 30_000, 'the first batch')
    // The first batch is not stored, yet the next one is fetched and handed over.
    await produce(kafka, topic, 0, ['b0', 'b1'])
    await waitFor(() => batches.length, (n) => n === 2, 30_000, 'the second batch while the first is not stored')
    expect(batches.map((b) => `${b.first}-${b.last}`)).toEqual(['0-2', '3-4'])

    // The second is stored first: nothing may be committed past the first, which is not.
    batches[1]!.release()
    await new Promise((resolve) => setImmediate(resolve))
    expect(consumer.pendingCommits()).toBe(2)
    expect((await committed(kafka, groupId, topic)).get(0)).toBe(-1)

    batches[0]!.release()
    await waitFor(() => committed(kafka, groupId, topic), (c) => c.get(0) === 5, 30_000, 'offset 5 committed')
    await waitFor(() => consumer.pendingCommits(), (n) => n === 0, 10_000, 'no commit pending')
    await consumer.stop()
  })

  it('drops the deferred commits of a partition revoked meanwhile: its next owner re-reads it', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('revoked')
    const groupId = uniqueName('group')
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'test-revoked' })
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    await produce(kafka, topic, 0, ['p0-0', 'p0-1'])
    await produce(kafka, topic, 1, ['p1-0', 'p1-1'])

    // The first member takes both partitions and holds their batches unstored.
    const held = new Map<number, () => void>()
    const first = createBatchConsumer(kafka, {
      groupId,
      topics: [topic],
      maxWaitTimeMs: 100,
      handleBatch: async (batch) => {
        const { stored, release } = holder()
        if (!held.has(batch.partition)) held.set(batch.partition, release)
        return { stored }
      },
    })
    await first.start()
    await waitFor(() => held.size, (n) => n === 2, 30_000, 'both partitions in the first member')

    // A second member joins: one partition moves to it and is read again from the start.
    const secondSaw: { partition: number; first: string }[] = []
    const never = holder()
    const second = createBatchConsumer(kafka, {
      groupId,
      topics: [topic],
      maxWaitTimeMs: 100,
      handleBatch: async (batch) => {
        secondSaw.push({ partition: batch.partition, first: batch.messages[0]!.offset })
        return { stored: never.stored }
      },
    })
    await second.start()
    await waitFor(() => secondSaw.length, (n) => n >= 1, 60_000, 'the second member to get a partition')
    const moved = secondSaw[0]!.partition
    const kept = 1 - moved
    expect(secondSaw[0]!.first).toBe('0')

    // The first member's batches are stored now: the revoked one first, then the kept one.
    held.get(moved)!()
    held.get(kept)!()
    await waitFor(() => committed(kafka, groupId, topic), (c) => c.get(kept) === 2, 30_000, 'the kept partition committed')
    expect((await committed(kafka, groupId, topic)).get(moved)).toBe(-1)
    await Promise.all([first.stop(), second.stop()])
  })
})

describe('batch consumer when its broker dies and comes back', () => {
  let broker: KafkaBroker
  let dataDir: string
  let port: number
  beforeAll(async () => {
    dataDir = await tempDir('kafka-consumer-crash')
    port = await freePort()
    broker = await startKafkaBroker({ dataDir, port })
  })
  afterAll(async () => {
    await broker.stop()
  })

  it('crashes, says "restarting" in its health, rejoins by itself and goes on processing', async () => {
    const topic = uniqueName('crash')
    const groupId = uniqueName('group')
    const kafka = createKafka({ brokers: broker.brokers, clientId: 'test-crash', requestTimeoutMs: 2_000, retries: 1 })
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    const sendAll = async (values: string[]) => {
      const producer = createBatchingProducer(kafka)
      await producer.start()
      await Promise.all(values.map((value) => producer.send(topic, { key: value, value })))
      await producer.stop()
    }
    const processed = new Set<string>()
    const restarts: string[] = []
    const consumer = createBatchConsumer(kafka, {
      groupId,
      topics: [topic],
      restartInitialMs: 200,
      restartMaxMs: 2_000,
      onRestart: (error) => restarts.push(error.message),
      handleBatch: async (batch) => {
        for (const m of batch.messages) processed.add(m.value!.toString())
      },
    })
    await consumer.start()
    const before = Array.from({ length: 50 }, (_, i) => `before-${i}`)
    await sendAll(before)
    await waitFor(() => processed.size, (n) => n === 50, 30_000, '50 messages before the crash')

    // kill -9 of the only broker: every request of the member fails until kafkajs gives up.
    await broker.process.kill()
    await waitFor(() => consumer.health().detail, (d) => d.startsWith('restarting'), 60_000, 'the consumer to report restarting')
    expect(consumer.health().ok).toBe(false)
    expect(consumer.crashes()).toBeGreaterThanOrEqual(1)

    broker = await startKafkaBroker({ dataDir, port })
    const after = Array.from({ length: 50 }, (_, i) => `after-${i}`)
    await sendAll(after)
    await waitFor(() => after.filter((v) => processed.has(v)).length, (n) => n === 50, 90_000, '50 messages after the broker came back')
    await waitFor(() => consumer.health().ok, (ok) => ok, 30_000, 'the consumer to be healthy again')
    await consumer.stop()
    expect(restarts.length).toBe(consumer.crashes())
    expect(before.every((v) => processed.has(v))).toBe(true)
  })
})
