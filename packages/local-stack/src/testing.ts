import { Kafka, logLevel } from 'kafkajs'
import { randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** Endpoints of the stack that the integration globalSetup started. */
export function testStackEnv(): { kafkaBrokers: string[]; redisUrl: string; clickhouseUrl: string | undefined } {
  const brokers = process.env['KAFKA_BROKERS']
  const redisUrl = process.env['REDIS_URL']
  if (!brokers || !redisUrl) {
    throw new Error('no test stack: run integration tests with `pnpm test:int` (vitest --project integration)')
  }
  return { kafkaBrokers: brokers.split(','), redisUrl, clickhouseUrl: process.env['CLICKHOUSE_URL'] || undefined }
}

/** A name no other test uses: topics, key prefixes, databases. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(path.join(process.env['CLICKJOIN_TEST_DATA_DIR'] ?? tmpdir(), `${prefix}-`))
}

/**
 * Polls until `check` returns true (never a fixed sleep); fails with the last observed value.
 * `intervalMs` between reads: longer where a read costs what is being measured.
 */
export async function waitFor<T>(
  read: () => Promise<T> | T,
  check: (value: T) => boolean,
  timeoutMs = 10_000,
  what = 'condition',
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  for (;;) {
    last = await read()
    if (check(last)) return last
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(last)}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

export interface ReadMessage {
  partition: number
  offset: string
  key: string | undefined
  value: string
}

/** Every message of a topic, from the beginning up to the high watermarks read at the start. */
export async function readTopic(brokers: string[], topic: string, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const kafka = new Kafka({ brokers, clientId: 'test-reader', logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map<number, bigint>()
  try {
    for (const p of await admin.fetchTopicOffsets(topic)) ends.set(p.partition, BigInt(p.high))
  } finally {
    await admin.disconnect()
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p))
  const messages: ReadMessage[] = []
  if (remaining.size === 0) return messages
  const consumer = kafka.consumer({ groupId: uniqueName('reader') })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`reading ${topic}: partitions ${[...remaining].join(',')} not read to the end in ${timeoutMs} ms`)),
        timeoutMs,
      )
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const end = ends.get(partition) ?? 0n
            if (BigInt(message.offset) >= end) return
            messages.push({ partition, offset: message.offset, key: message.key?.toString(), value: message.value?.toString() ?? '' })
            if (BigInt(message.offset) === end - 1n) remaining.delete(partition)
            if (remaining.size === 0) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return messages
}
