import type { FastifyInstance } from 'fastify'
import { insertRows, type ClickHouseClient } from '@clickjoin/clickhouse'
import { deadLetterMessage, decodeEvent, topicNames } from '@clickjoin/contracts'
import {
  createBatchConsumer,
  createBatchingProducer,
  ensureTopics,
  type Kafka,
  type PartitionBatch,
} from '@clickjoin/kafka'
import { createMetricsRegistry, healthRoutes, type Component, type Logger, type ShutdownStep } from '@clickjoin/service-runtime'
import { withoutStoredClicks, type ClickRow } from './click-dedup.ts'
import type { SinkConfig } from './config.ts'
import { createLagProbe } from './lag.ts'
import { createSinkMetrics } from './metrics.ts'
import { migrateSchema } from './migrations/index.ts'
import { topicTables, UnstorableEventError, type TopicTable } from './rows.ts'
import { createSqlHttpServer, type SqlHttpServer } from './sql-http.ts'
import { createBatchWriter, type BatchWriter } from './writer.ts'

export interface SinkDeps {
  kafka: Kafka
  /** The writer's connection: migrations and inserts. */
  clickhouse: ClickHouseClient
  /** Embedded mode only: a separate chDB session for read-only SQL over HTTP. */
  sqlSession: ClickHouseClient | undefined
  /** The health/metrics app; the sink adds its routes and listens on PORT. */
  healthApp: FastifyInstance
  log: Logger
}

export type SinkSettings = Pick<
  SinkConfig,
  | 'HOST'
  | 'PORT'
  | 'KAFKA_TOPIC_PREFIX'
  | 'KAFKA_TOPIC_PARTITIONS'
  | 'SINK_CONSUMER_GROUP'
  | 'CLICKHOUSE_DATABASE'
  | 'CLICKHOUSE_HTTP_PORT'
  | 'SINK_BATCH_MAX_ROWS'
  | 'SINK_BATCH_MAX_BYTES'
  | 'SINK_BATCH_MAX_WAIT'
  | 'SINK_BATCH_QUIET'
  | 'SINK_FETCH_MAX_BYTES_PER_PARTITION'
  | 'SINK_RETRY_MAX_BACKOFF'
  | 'SINK_SESSION_TIMEOUT'
  | 'CLICKS_TTL_DAYS'
  | 'POSTBACKS_TTL_DAYS'
  | 'CONVERSIONS_TTL_DAYS'
>

export interface RunningSink {
  /** Health/metrics port actually bound (PORT 0 picks one). */
  port: number
  /** SQL-over-HTTP port, embedded mode only. */
  sqlPort: number | undefined
  writer: BatchWriter
  /** Stores one partition batch: what the consumer calls; exposed for replay tests. */
  storePartitionBatch(batch: PartitionBatch): Promise<void>
  /** In order: stop consuming, flush the writer, close servers and clients. */
  shutdownSteps(): ShutdownStep[]
}

/**
 * Migrates the schema, then consumes clicks, conversions (postbacks) and outcomes into their
 * tables. A partition batch's offsets are committed by the consumer only after
 * storePartitionBatch resolved, which happens only after ClickHouse acknowledged every row
 * of it and Kafka acknowledged every dead letter of it.
 */
export async function startSink(deps: SinkDeps, settings: SinkSettings): Promise<RunningSink> {
  const { kafka, clickhouse, log } = deps
  const database = settings.CLICKHOUSE_DATABASE
  const topics = topicNames(settings.KAFKA_TOPIC_PREFIX)
  const inputs = topicTables(topics)
  const inputByTopic = new Map<string, TopicTable>(inputs.map((input) => [input.topic, input]))

  await migrateSchema(clickhouse, {
    database,
    retentionDays: {
      clicks: settings.CLICKS_TTL_DAYS,
      postbacks: settings.POSTBACKS_TTL_DAYS,
      conversions: settings.CONVERSIONS_TTL_DAYS,
    },
    log,
  })
  await ensureTopics(
    kafka,
    Object.values(topics).map((topic) => ({ topic, numPartitions: settings.KAFKA_TOPIC_PARTITIONS })),
  )

  const batchWriter = createBatchWriter({
    maxRows: settings.SINK_BATCH_MAX_ROWS,
    maxBytes: settings.SINK_BATCH_MAX_BYTES,
    maxWaitMs: settings.SINK_BATCH_MAX_WAIT,
    quietMs: settings.SINK_BATCH_QUIET,
    retryMaxBackoffMs: settings.SINK_RETRY_MAX_BACKOFF,
    insert: async (block) => {
      // Clicks already stored are left out, so the report counts each click once (click-dedup.ts).
      const rows = block.table === 'clicks' ? await withoutStoredClicks(clickhouse, database, block.rows as ClickRow[]) : block.rows
      if (rows.length === 0) return
      await insertRows(clickhouse, { table: `${database}.${block.table}`, rows, deduplicationToken: block.deduplicationToken })
    },
    onInserted(block, ms) {
      metrics.rowsWritten.inc({ table: block.table }, block.rows.length)
      metrics.insertRows.observe({ table: block.table }, block.rows.length)
      metrics.insertSeconds.observe({ table: block.table }, ms / 1000)
    },
    onInsertFailed(block, error, attempt, retryInMs) {
      metrics.insertFailures.inc({ table: block.table })
      log.warn(
        { table: block.table, rows: block.rows.length, attempt, retryInMs, err: error },
        'insert failed; retrying, nothing committed',
      )
    },
  })
  const registry = createMetricsRegistry('sink')
  const lagProbe = createLagProbe(kafka, settings.SINK_CONSUMER_GROUP, inputs.map((i) => i.topic))
  const metrics = createSinkMetrics(registry, {
    pendingRows: () => batchWriter.pendingRows(),
    consumerLag: () => lagProbe.consumerLag(),
  })

  const producer = createBatchingProducer(kafka, { lingerMs: 5 })
  await producer.start()

  let batchesInFlight = 0
  async function storePartitionBatch(batch: PartitionBatch): Promise<void> {
    batchesInFlight++
    try {
      await storeRowsAndDeadLetters(batch)
    } finally {
      batchesInFlight--
    }
  }

  async function storeRowsAndDeadLetters(batch: PartitionBatch): Promise<void> {
    const input = inputByTopic.get(batch.topic)
    if (!input || batch.messages.length === 0) return
    const rows: object[] = []
    let bytes = 0
    const deadLetters: Promise<void>[] = []
    for (const message of batch.messages) {
      const decoded = decodeEvent(input.contract, message.value)
      let reason: string
      if (decoded.ok) {
        try {
          rows.push(input.toRow(decoded.value))
          bytes += message.value?.length ?? 0
          continue
        } catch (error) {
          if (!(error instanceof UnstorableEventError)) throw error
          reason = error.message
        }
      } else {
        reason = decoded.reason
      }
      metrics.deadLetters.inc({ topic: batch.topic })
      deadLetters.push(
        producer.send(
          topics.deadLetter,
          deadLetterMessage({
            sourceTopic: batch.topic,
            partition: batch.partition,
            offset: message.offset,
            key: message.key,
            value: message.value,
            reason: `${input.contract.name}: ${reason}`,
          }),
        ),
      )
    }
    const first = batch.messages[0]!
    const last = batch.messages[batch.messages.length - 1]!
    const stored =
      rows.length === 0
        ? Promise.resolve()
        : batchWriter.write(
            input.table,
            { topic: batch.topic, partition: batch.partition, firstOffset: first.offset, lastOffset: last.offset },
            rows,
            bytes,
          )
    // Keep the group membership alive while ClickHouse is slow or down.
    const heartbeats = setInterval(() => void batch.heartbeat().catch(() => undefined), 3_000)
    try {
      await Promise.all([stored, ...deadLetters])
    } finally {
      clearInterval(heartbeats)
    }
  }

  const consumer = createBatchConsumer(kafka, {
    groupId: settings.SINK_CONSUMER_GROUP,
    topics: inputs.map((i) => i.topic),
    fromBeginning: true,
    // Every partition of every input at once, so one fetch round becomes one insert per table.
    partitionsConsumedConcurrently: inputs.length * settings.KAFKA_TOPIC_PARTITIONS,
    maxBytesPerPartition: settings.SINK_FETCH_MAX_BYTES_PER_PARTITION,
    sessionTimeoutMs: settings.SINK_SESSION_TIMEOUT,
    handleBatch: storePartitionBatch,
  })

  const clickhouseHealth: Component = {
    id: 'clickhouse',
    async health() {
      const ping = await clickhouse.ping()
      return ping.success ? { ok: true, detail: 'reachable' } : { ok: false, detail: String(ping.error.message) }
    },
  }
  const components: Component[] = [consumer, producer, clickhouseHealth, batchWriter]
  await deps.healthApp.register(healthRoutes, { components: () => components, registry })
  await deps.healthApp.listen({ port: settings.PORT, host: settings.HOST })
  const address = deps.healthApp.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : settings.PORT

  let sqlServer: SqlHttpServer | undefined
  let sqlPort: number | undefined
  if (deps.sqlSession) {
    sqlServer = createSqlHttpServer({ session: deps.sqlSession, log })
    sqlPort = await sqlServer.listen(settings.CLICKHOUSE_HTTP_PORT, settings.HOST)
  }

  await consumer.start()
  log.info({ database, topics: inputs.map((i) => i.topic), port, sqlPort }, 'sink running')

  return {
    port,
    sqlPort,
    writer: batchWriter,
    storePartitionBatch,
    shutdownSteps: () => [
      {
        name: 'store what was consumed, commit it, leave the group',
        // kafkajs skips commits once the consumer is stopping, so the batches in hand are
        // stored (at once, not on the timers) and committed while it still runs. Batches
        // caught by the stop itself are stored but replayed on the next start, which the
        // insert token makes a no-op.
        run: async () => {
          batchWriter.stopBatching()
          const deadline = Date.now() + 5_000
          do {
            await batchWriter.flush()
            await new Promise((resolve) => setTimeout(resolve, 20))
          } while (batchesInFlight > 0 && Date.now() < deadline)
          await Promise.all([consumer.stop(), batchWriter.flush()])
        },
      },
      { name: 'flush the writer', run: () => batchWriter.flush() },
      { name: 'flush dead letters', run: () => producer.stop() },
      {
        name: 'close HTTP',
        run: async () => {
          await sqlServer?.close()
          await deps.healthApp.close()
        },
      },
      { name: 'close Kafka admin', run: () => lagProbe.close() },
      {
        name: 'close ClickHouse',
        run: async () => {
          await deps.sqlSession?.close()
          await clickhouse.close()
        },
      },
    ],
  }
}
