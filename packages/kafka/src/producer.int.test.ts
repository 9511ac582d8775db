import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { readTopic, tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { createKafka } from './client.ts'
import { createBatchingProducer, KafkaUnavailableError } from './producer.ts'
import { ensureTopics } from './topics.ts'

describe('batching producer', () => {
  it('turns 5,000 concurrent sends into far fewer Produce requests, and every message lands', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('batching')
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'test-producer' })
    await ensureTopics(kafka, [{ topic, numPartitions: 4 }])
    const producer = createBatchingProducer(kafka, { lingerMs: 5 })
    await producer.start()
    const n = 5_000
    await Promise.all(
      Array.from({ length: n }, (_, i) => producer.send(topic, { key: `click-${i % 97}`, value: `m${i}` })),
    )
    const stats = producer.stats()
    await producer.stop()

    expect(stats.messagesAcked).toBe(n)
    expect(stats.produceRequests).toBeGreaterThan(0)
    expect(stats.produceRequests).toBeLessThan(n / 50)
    const values = (await readTopic(kafkaBrokers, topic)).map((m) => m.value)
    expect(values).toHaveLength(n)
    expect(new Set(values)).toEqual(new Set(Array.from({ length: n }, (_, i) => `m${i}`)))
  })
})

describe('batching producer with large messages', () => {
  it('keeps every request under the broker message limit: 4 MB for one partition all lands', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('large')
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'test-large' })
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    const producer = createBatchingProducer(kafka, { lingerMs: 20, ackTimeoutMs: 20_000 })
    await producer.start()
    const payload = 'x'.repeat(100_000)
    // One key: every message goes to the same partition, whose record batch the broker caps at 1 MB.
    await Promise.all(Array.from({ length: 40 }, (_, i) => producer.send(topic, { key: 'same', value: `${i}:${payload}` })))
    const stats = producer.stats()
    await producer.stop()
    expect(stats.messagesAcked).toBe(40)
    expect(stats.batches).toBeGreaterThanOrEqual(6) // 4 MB in batches of at most 768 KiB
    expect((await readTopic(kafkaBrokers, topic)).length).toBe(40)
  })
})

describe('batching producer when its broker stops', () => {
  let broker: KafkaBroker
  let dataDir: string
  let port: number

  beforeAll(async () => {
    dataDir = await tempDir('kafka-stop')
    port = await freePort()
    broker = await startKafkaBroker({ dataDir, port })
  })
  afterAll(async () => {
    await broker.stop()
  })

  it('rejects pending sends, resolves none falsely, and recovers when the broker is back', async () => {
    const topic = uniqueName('outage')
    const kafka = createKafka({ brokers: broker.brokers, clientId: 'test-outage', requestTimeoutMs: 2_000, retries: 1 })
    await ensureTopics(kafka, [{ topic, numPartitions: 2 }])
    const producer = createBatchingProducer(kafka, { lingerMs: 20, ackTimeoutMs: 8_000 })
    await producer.start()

    const outcome = new Map<string, 'acked' | 'refused'>()
    const send = (value: string) =>
      producer.send(topic, { key: value, value }).then(
        () => void outcome.set(value, 'acked'),
        (err: unknown) => {
          expect(err).toBeInstanceOf(KafkaUnavailableError)
          outcome.set(value, 'refused')
        },
      )

    await Promise.all(Array.from({ length: 200 }, (_, i) => send(`before-${i}`)))
    // Sends in flight while the broker dies (kill -9: no graceful handover).
    const during = Array.from({ length: 200 }, (_, i) => send(`during-${i}`))
    await broker.process.kill()
    await Promise.all(during)
    await Promise.all(Array.from({ length: 50 }, (_, i) => send(`after-${i}`)))

    const refusedWhileDown = [...outcome].filter(([k, v]) => !k.startsWith('before') && v === 'refused').length
    expect([...outcome].filter(([k]) => k.startsWith('before')).every(([, v]) => v === 'acked')).toBe(true)
    expect(refusedWhileDown).toBeGreaterThanOrEqual(50) // every `after-` send, at least
    expect(producer.health().ok).toBe(false)

    broker = await startKafkaBroker({ dataDir, port })
    // The same producer instance recovers without a restart.
    let recovered = false
    for (let attempt = 0; attempt < 30 && !recovered; attempt++) {
      recovered = await producer.send(topic, { key: 'probe', value: `recovered-${attempt}` }).then(
        () => true,
        () => false,
      )
    }
    expect(recovered).toBe(true)
    await Promise.all(Array.from({ length: 100 }, (_, i) => send(`back-${i}`)))
    await producer.stop()

    // Everything acknowledged is in Kafka; a refused send may or may not be (the caller retries).
    const acked = [...outcome].filter(([, v]) => v === 'acked').map(([k]) => k)
    const stored = new Set((await readTopic(broker.brokers, topic)).map((m) => m.value))
    expect(acked.filter((k) => !stored.has(k))).toEqual([])
  })
})
