import { describe, expect, it } from 'vitest'
import { ConfigError } from '@clickjoin/config'
import { sinkConfigFromEnv } from './config.ts'

describe('sink configuration', () => {
  it('has the shared defaults', () => {
    const config = sinkConfigFromEnv({})
    expect(config).toMatchObject({
      PORT: 8082,
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_TOPIC_PARTITIONS: 6,
      CLICKHOUSE_DATA_DIR: './.data/clickhouse',
      CLICKHOUSE_DATABASE: 'clickjoin',
      CLICKHOUSE_HTTP_PORT: 8123,
      SINK_BATCH_MAX_ROWS: 50_000,
      SINK_BATCH_MAX_WAIT: 1_000,
      SINK_BATCH_MIN_INTERVAL: 250,
      SINK_BATCH_MIN_INTERVAL_RAW: 1_000,
      CLICKS_TTL_DAYS: 0,
    })
    expect(config.CLICKHOUSE_URL).toBeUndefined()
  })

  it('names every bad variable', () => {
    let error: unknown
    try {
      sinkConfigFromEnv({
        CLICKHOUSE_DATABASE: 'drop table',
        CLICKS_TTL_DAYS: '-1',
        CLICKHOUSE_URL: 'localhost:8123',
        KAFKA_TOPIC_PREFIX: 'bad prefix!',
      })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems.map((p) => p.variable).sort()).toEqual([
      'CLICKHOUSE_DATABASE',
      'CLICKHOUSE_URL',
      'CLICKS_TTL_DAYS',
      'KAFKA_TOPIC_PREFIX',
    ])
  })

  it('reads retention days and durations', () => {
    const config = sinkConfigFromEnv({ CONVERSIONS_TTL_DAYS: '400', SINK_BATCH_QUIET: '50ms', SINK_RETRY_MAX_BACKOFF: '1m' })
    expect([config.CONVERSIONS_TTL_DAYS, config.SINK_BATCH_QUIET, config.SINK_RETRY_MAX_BACKOFF]).toEqual([400, 50, 60_000])
  })
})
