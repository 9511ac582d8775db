import fastify from 'fastify'
import { randomBytes } from 'node:crypto'
import { createBatchingProducer, createFastProducer, createKafka } from '@clickjoin/kafka'

// The "durable bare" reference of bench/redirect.ts: fastify plus the same batching producer
// with the same settings as ingest (acks=all, linger 1 ms, 3 batches in flight), publishing a
// fixed click-sized message per request before a fixed 302 — nothing else (no click ID MAC,
// campaign, validation, cookie, duplicate check or metrics). BENCH_PRODUCER=kafkajs puts the
// kafkajs transport under the same queue (the others' producer), default @platformatic/kafka
// (ingest's).
const topic = process.env['BENCH_TOPIC']!
const connection = { brokers: process.env['KAFKA_BROKERS']!.split(','), clientId: 'durable-bare' }
const options = { lingerMs: 1, maxInFlightBatches: 3, ackTimeoutMs: 5_000, maxQueuedMessages: 50_000 }
const producer =
  process.env['BENCH_PRODUCER'] === 'kafkajs'
    ? createBatchingProducer(createKafka(connection), options)
    : createFastProducer(connection, options)
await producer.start()
const value = Buffer.from(JSON.stringify({ v: 1, campaign_id: 'bench', publisher_id: 'p1', pad: 'x'.repeat(380) }))
const app = fastify({ logger: false })
app.get('/c/:campaignId', async (_request, reply) => {
  await producer.send(topic, { key: randomBytes(16).toString('base64url'), value })
  return reply.code(302).header('location', 'https://shop.example/landing?click_id=fixed').send()
})
app.get('/healthz', async () => ({ status: 'ok' }))
// The same accept backlog as ingest (INGEST_LISTEN_BACKLOG): 800 connections opened at once
// must not lose SYNs to Node's default of 511 in one server and not in another.
await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1', backlog: 4096 })
process.once('SIGTERM', () => void app.close().then(() => producer.stop()).then(() => process.exit(0)))
