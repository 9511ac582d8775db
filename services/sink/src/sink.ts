import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { clickHouseTarget, createClickHouse, insertRows, type ClickHouseClient } from '@clickjoin/clickhouse'
import { deadLetterFor, topicNames } from '@clickjoin/contracts'
import {
  createBatchingProducer,
  createEventConsumer,
  createKafka,
  pipelineTopicsComponent,
  type DeferredCommit,
  type EventBatch,
  type Kafka,
  type KafkaMessage,
  type PartitionBatch,
} from '@clickjoin/kafka'
import {
  componentLifecycle,
  createMetricsRegistry,
  healthRoutes,
  loggerOptions,
  type Component,
  type Logger,
  type RunnableService,
} from '@clickjoin/service-runtime'
import { withoutStoredClicks, type ClickRow } from './click-dedup.ts'
import type { SinkConfig } from './config.ts'
import { createSinkMetrics } from './metrics.ts'
import { migrateSchema } from './migrations/index.ts'
import { insertSettingAsideRefused } from './refused-rows.ts'
import { deadLetterRow, topicTables, UnstorableEventError, type TopicTable } from './rows.ts'
import { createSqlHttpServer } from './sql-http.ts'
import { createBatchWriter, type BatchWriter } from './writer.ts'

/** The tables of events as received (reports read them by the minute); `conversions` is what a postback waits for. */
const rawEventTables: ReadonlySet<string> = new Set(['clicks', 'postbacks'])

/** What a caller may supply instead of what the sink builds from its configuration (tests). */
export interface SinkDeps {
  /** JSON logs to stdout when omitted. */
  log?: Logger & { debug?(obj: object, msg?: string): void }
  /** The health/metrics app; default a fastify instance logging through `log`. */
  healthApp?: FastifyInstance
  kafka?: Kafka
  /** A ClickHouse client the caller owns (and closes); default one from the configuration. */
  clickhouse?: ClickHouseClient
  /** With `clickhouse`: opens a session for SQL over HTTP, or undefined for no SQL over HTTP. */
  openSqlSession?: (() => ClickHouseClient) | undefined
}

export interface SinkService extends RunnableService {
  kafka: Kafka
  /** Health/metrics port actually bound (PORT 0 picks one); after start. */
  readonly port: number
  /** SQL-over-HTTP port, embedded mode only; after start. */
  readonly sqlPort: number | undefined
  /** Where SQL over HTTP listens (CLICKHOUSE_HTTP_HOST), embedded mode only; after start. */
  readonly sqlAddress: AddressInfo | undefined
  writer: BatchWriter
  /** Stores one partition batch as the consumer does, resolving once stored; exposed for replay tests. */
  storePartitionBatch(batch: PartitionBatch): Promise<void>
  /** In starting order; stopped in reverse. */
  components: readonly Component[]
}

/**
 * Composes the sink: migrates the schema, ensures the topics, then consumes clicks,
 * conversions (postbacks) and outcomes into their tables. A partition batch's offsets are
 * committed only after ClickHouse acknowledged every row of it and Kafka every dead letter
 * of it, in order per partition; the consumer fetches on meanwhile (docs/delivery.md).
 * Components in starting order: ClickHouse (migrations), topics, the dead-letter producer,
 * the writer, health HTTP, SQL over HTTP, the consumer last; stopped in reverse.
 */
export function createSinkService(config: SinkConfig, deps: SinkDeps = {}): SinkService {
  const healthApp = deps.healthApp ?? Fastify({ logger: loggerOptions('sink', config.LOG_LEVEL) })
  const log = deps.log ?? healthApp.log
  const kafka =
    deps.kafka ??
    createKafka({
      brokers: config.KAFKA_BROKERS,
      clientId: 'clickjoin-sink',
      log: ({ message, ...rest }) => log.debug?.(rest, message),
    })
  const target = clickHouseTarget(config.CLICKHOUSE_URL, config.CLICKHOUSE_DATA_DIR)
  const ownsClickHouse = deps.clickhouse === undefined
  const clickhouse: ClickHouseClient = deps.clickhouse ?? createClickHouse(target)
  // Its own chDB sessions on the same data directory: the read-only setting of SQL over HTTP
  // must never reach the writer's session (chDB keeps settings per session).
  const openSqlSession = ownsClickHouse ? (target.kind === 'embedded' ? () => createClickHouse(target) : undefined) : deps.openSqlSession
  const database = config.CLICKHOUSE_DATABASE
  const topics = topicNames(config.KAFKA_TOPIC_PREFIX)
  const inputs = topicTables(topics)
  const registry = createMetricsRegistry('sink')

  const writer = createBatchWriter({
    maxRows: config.SINK_BATCH_MAX_ROWS,
    maxBytes: config.SINK_BATCH_MAX_BYTES,
    maxWaitMs: config.SINK_BATCH_MAX_WAIT,
    quietMs: config.SINK_BATCH_QUIET,
    minIntervalMs: (table) => (rawEventTables.has(table) ? config.SINK_BATCH_MIN_INTERVAL_RAW : config.SINK_BATCH_MIN_INTERVAL),
    retryMaxBackoffMs: config.SINK_RETRY_MAX_BACKOFF,
    insert: async (block) => {
      // Clicks already stored are left out, so the report counts each click once (click-dedup.ts).
      const rows = block.table === 'clicks' ? await withoutStoredClicks(clickhouse, database, block.rows as ClickRow[]) : block.rows
      if (rows.length === 0) return
      // A row refused for its content is set aside into dead_letters: the partition moves on.
      const refused = await insertSettingAsideRefused(rows, block.deduplicationToken, (part, token) =>
        insertRows(clickhouse, { table: `${database}.${block.table}`, rows: part, deduplicationToken: token }),
      )
      if (refused.length === 0) return
      const deadLetterRows = refused.map(({ row, reason }) => {
        const origin = originOfRow.get(row)
        return deadLetterRow(
          deadLetterFor({
            sourceTopic: origin?.topic ?? block.table,
            partition: origin?.partition ?? 0,
            offset: origin?.message.offset ?? '0',
            key: origin?.message.key ?? null,
            value: origin?.message.value ?? Buffer.from(JSON.stringify(row)),
            reason: `ClickHouse refused the row for ${block.table}: ${reason}`,
          }),
        )
      })
      await insertRows(clickhouse, { table: `${database}.dead_letters`, rows: deadLetterRows, deduplicationToken: `${block.deduplicationToken}:refused` })
      metrics.rowsRefused.inc({ table: block.table }, refused.length)
      log.warn({ table: block.table, refused: refused.length, reason: refused[0]!.reason }, 'rows refused by ClickHouse set aside in dead_letters')
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
  const metrics = createSinkMetrics(registry, { pendingRows: () => writer.pendingRows() })
  const deadLetters = createBatchingProducer(kafka, { lingerMs: 5 })

  /** The message each pending row came from, for a dead letter if ClickHouse refuses the row. */
  const originOfRow = new WeakMap<object, { topic: string; partition: number; message: KafkaMessage }>()

  /**
   * Hands the batch's rows to the writer and returns at once (the consumer fetches and decodes
   * the next batches while ClickHouse inserts), its offsets committed once its insert was
   * acknowledged. While more than SINK_MAX_PENDING_ROWS rows wait for ClickHouse, a batch is
   * handed back only once stored: that bounds memory, and stops fetching while ClickHouse is down.
   */
  async function storeEvents(batch: EventBatch<TopicTable>): Promise<DeferredCommit | undefined> {
    const rows: object[] = []
    let bytes = 0
    for (const { message, value } of batch.events) {
      try {
        const row = batch.input.toRow(value)
        originOfRow.set(row, { topic: batch.topic, partition: batch.partition, message })
        rows.push(row)
        bytes += message.value?.length ?? 0
      } catch (error) {
        if (!(error instanceof UnstorableEventError)) throw error
        batch.deadLetter(message, error.message)
      }
    }
    if (rows.length === 0) return undefined
    const first = batch.events[0]!.message
    const last = batch.events[batch.events.length - 1]!.message
    const stored = writer.write(
      batch.input.table,
      { topic: batch.topic, partition: batch.partition, firstOffset: first.offset, lastOffset: last.offset },
      rows,
      bytes,
    )
    if (writer.pendingRows() > config.SINK_MAX_PENDING_ROWS) await stored
    return { stored }
  }

  const consumer = createEventConsumer(kafka, {
    groupId: config.SINK_CONSUMER_GROUP,
    inputs,
    deadLetterTopic: topics.deadLetter,
    deadLetters,
    metrics: { registry, metricPrefix: 'clickjoin_sink' },
    fromBeginning: true,
    // Every partition of every input at once, so one fetch round becomes one insert per table.
    partitionsConsumedConcurrently: inputs.length * config.KAFKA_TOPIC_PARTITIONS,
    maxBytesPerPartition: config.SINK_FETCH_MAX_BYTES_PER_PARTITION,
    minBytes: config.SINK_FETCH_MIN_BYTES,
    maxWaitTimeMs: config.SINK_FETCH_MAX_WAIT,
    sessionTimeoutMs: config.SINK_SESSION_TIMEOUT,
    log,
    handleEvents: storeEvents,
  })

  let port = config.PORT
  let sqlPort: number | undefined
  const sqlServer =
    openSqlSession &&
    createSqlHttpServer({
      openSession: openSqlSession,
      users: config.CLICKHOUSE_HTTP_USERS,
      log,
      onQuery: (seconds, ok) => metrics.sqlQuerySeconds.observe({ ok: String(ok) }, seconds),
    })
  const components: Component[] = [
    {
      id: 'clickhouse',
      start: async () =>
        void await migrateSchema(clickhouse, {
          database,
          retentionDays: {
            clicks: config.CLICKS_TTL_DAYS,
            postbacks: config.POSTBACKS_TTL_DAYS,
            conversions: config.CONVERSIONS_TTL_DAYS,
            dead_letters: config.DEAD_LETTERS_TTL_DAYS,
          },
          log,
        }),
      stop: async () => {
        if (!ownsClickHouse) return
        await clickhouse.close()
      },
      async health() {
        const ping = await clickhouse.ping()
        return ping.success ? { ok: true, detail: 'reachable' } : { ok: false, detail: String(ping.error.message) }
      },
    },
    pipelineTopicsComponent(kafka, {
      topicPrefix: config.KAFKA_TOPIC_PREFIX,
      partitions: config.KAFKA_TOPIC_PARTITIONS,
      replicationFactor: config.KAFKA_REPLICATION_FACTOR,
    }),
    deadLetters,
    { id: writer.id, stop: () => writer.flush(), health: () => writer.health() },
    {
      id: 'http',
      async start() {
        await healthApp.register(healthRoutes, { components: () => readinessOf, registry })
        await healthApp.listen({ port: config.PORT, host: config.HOST })
        const address = healthApp.server.address()
        if (typeof address === 'object' && address !== null) port = address.port
      },
      stop: () => healthApp.close(),
      health: () => ({ ok: true, detail: 'listening' }),
    },
    {
      id: 'sql-http',
      async start() {
        if (sqlServer) sqlPort = await sqlServer.listen(config.CLICKHOUSE_HTTP_PORT, config.CLICKHOUSE_HTTP_HOST)
      },
      stop: async () => sqlServer?.close(),
      health: () => ({ ok: true, detail: sqlServer ? 'listening' : 'not embedded' }),
    },
    {
      id: consumer.id,
      async start() {
        await consumer.start()
        log.info({ database, topics: inputs.map((i) => i.topic), port, sqlPort }, 'sink running')
      },
      // kafkajs skips commits once the consumer is stopping, so it stops fetching, and the
      // batches in hand are stored (at once, not on the timers) and committed while it still
      // runs. Batches caught by the stop itself are stored but replayed on the next start,
      // which the insert token makes a no-op.
      async stop() {
        consumer.pauseFetching()
        writer.stopBatching()
        const deadline = Date.now() + 5_000
        do {
          await writer.flush()
          await new Promise((resolve) => setTimeout(resolve, 20))
        } while (consumer.batchesInFlight() > 0 && Date.now() < deadline)
        await Promise.all([consumer.stop(), writer.flush()])
      },
      health: () => consumer.health(),
    },
  ]
  const readinessOf: Component[] = [consumer, deadLetters, components[0]!, writer]
  const lifecycle = componentLifecycle(components, log)

  return {
    log,
    kafka,
    get port() {
      return port
    },
    get sqlPort() {
      return sqlPort
    },
    get sqlAddress() {
      const address = sqlServer?.server.address()
      return typeof address === 'object' && address !== null ? address : undefined
    },
    writer,
    async storePartitionBatch(batch) {
      const handled = await consumer.handleBatch(batch)
      await handled?.stored
    },
    components,
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
  }
}

/**
 * @deprecated The former entry (benchmarks): creates and starts the sink with the caller's
 * clients; `shutdownSteps()` stops it without closing them.
 */
export async function startSink(
  deps: Required<Pick<SinkDeps, 'kafka' | 'clickhouse' | 'healthApp' | 'log'>> & { openSqlSession: (() => ClickHouseClient) | undefined },
  config: SinkConfig,
): Promise<SinkService & { shutdownSteps(): { name: string; run(): Promise<void> }[] }> {
  const sink = createSinkService(config, deps)
  await sink.start()
  return Object.assign(sink, { shutdownSteps: () => [{ name: 'stop the sink', run: () => sink.stop() }] })
}
