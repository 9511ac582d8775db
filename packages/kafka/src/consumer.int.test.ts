import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { tempDir, testStackEnv, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
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
