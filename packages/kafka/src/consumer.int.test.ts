import { describe, expect, it } from 'vitest'
import { testStackEnv, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
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
