import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startKafkaBroker, type KafkaBroker } from '@clickjoin/local-stack'
import { readTopic, tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'
import { createKafka, type KafkaConnectionOptions } from './client.ts'
import { createFastProducer } from './fast-producer.ts'
import { createBatchingProducer, KafkaUnavailableError, type BatchingProducerOptions, type EventProducer } from './producer.ts'
import { ensureTopics } from './topics.ts'

// The same queue over both transports: kafkajs (attributor, sink, dispatcher, CLI) and
// @platformatic/kafka (ingest). Every guarantee below must hold for both.
const transports: Array<[string, (c: KafkaConnectionOptions, o: BatchingProducerOptions) => EventProducer]> = [
  ['kafkajs', (c, o) => createBatchingProducer(createKafka(c), o)],
  ['@platformatic/kafka', (c, o) => createFastProducer(c, o)],
]

describe('key → partition', () => {
  it('puts every key on the same partition with @platformatic/kafka as with kafkajs (Java murmur2)', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('partitions')
    await ensureTopics(createKafka({ brokers: kafkaBrokers, clientId: 'test-partitions' }), [{ topic, numPartitions: 6 }])
    // Click-ID-like keys (base64url) and a few others; ~half of them have a negative murmur2 hash.
    const keys = Array.from({ length: 500 }, (_, i) => (i % 5 === 0 ? `click-${i}` : Buffer.from(`key-${i}-${i * 7919}`).toString('base64url')))
    for (const [name, make] of transports) {
      const producer = make({ brokers: kafkaBrokers, clientId: `test-partitions-${name}` }, { lingerMs: 5 })
      await producer.start()
      await Promise.all(keys.map((key) => producer.send(topic, { key, value: `${name}|${key}` })))
      await producer.stop()
    }
    const partitionOf = new Map<string, number>()
    for (const m of await readTopic(kafkaBrokers, topic)) partitionOf.set(m.value, m.partition)
    const moved = keys.filter((key) => partitionOf.get(`kafkajs|${key}`) !== partitionOf.get(`@platformatic/kafka|${key}`))
    expect(partitionOf.size).toBe(keys.length * 2)
    expect(new Set(partitionOf.values()).size).toBe(6)
    expect(moved).toEqual([])
  })
})

describe.each(transports)('batching producer over %s', (name, make) => {

  it('turns 5,000 concurrent sends into far fewer Produce requests, and every message lands', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('batching')
    await ensureTopics(createKafka({ brokers: kafkaBrokers, clientId: 'test-producer' }), [{ topic, numPartitions: 4 }])
    const producer = make({ brokers: kafkaBrokers, clientId: `test-producer-${name}` }, { lingerMs: 5 })
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

  it('keeps every request under the broker message limit: 4 MB for one partition all lands', async () => {
    const { kafkaBrokers } = testStackEnv()
    const topic = uniqueName('large')
    await ensureTopics(createKafka({ brokers: kafkaBrokers, clientId: 'test-large' }), [{ topic, numPartitions: 2 }])
    const producer = make({ brokers: kafkaBrokers, clientId: `test-large-${name}` }, { lingerMs: 20, ackTimeoutMs: 20_000 })
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

describe.each(transports)('batching producer over %s when its broker stops', (name, make) => {
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
    const connection = { brokers: broker.brokers, clientId: `test-outage-${name}`, requestTimeoutMs: 2_000, retries: 1 }
    await ensureTopics(createKafka(connection), [{ topic, numPartitions: 2 }])
    const producer = make(connection, { lingerMs: 20, ackTimeoutMs: 8_000 })
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
