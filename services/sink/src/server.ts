import Fastify from 'fastify'
import { clickHouseTarget, createClickHouse } from '@clickjoin/clickhouse'
import { createKafka } from '@clickjoin/kafka'
import { loggerOptions, onShutdownSignals } from '@clickjoin/service-runtime'
import { sinkConfigFromEnv } from './config.ts'
import { startSink } from './sink.ts'

// The only process entry and the composition root: configuration once, then the clients.
const config = sinkConfigFromEnv()
const healthApp = Fastify({ logger: loggerOptions('sink', config.LOG_LEVEL) })
const log = healthApp.log

const kafka = createKafka({
  brokers: config.KAFKA_BROKERS,
  clientId: 'clickjoin-sink',
  log: ({ level, message, ...rest }) => (level === 'error' ? log.error(rest, message) : log.warn(rest, message)),
})
const target = clickHouseTarget(config.CLICKHOUSE_URL, config.CLICKHOUSE_DATA_DIR)
const clickhouse = createClickHouse(target)
// Its own chDB session on the same data directory: the read-only setting of SQL over HTTP
// must never reach the writer's session (chDB keeps settings per session).
const sqlSession = target.kind === 'embedded' ? createClickHouse(target) : undefined

const sink = await startSink({ kafka, clickhouse, sqlSession, healthApp, log }, config)
onShutdownSignals(() => sink.shutdownSteps(), log, { deadlineMs: config.SHUTDOWN_DEADLINE })
