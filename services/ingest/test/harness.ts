import { loadIngestConfig, type IngestConfig } from '../src/config.ts'
import { createIngestService, type IngestService } from '../src/service.ts'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'

export const ADMIN_TOKEN = 'test-admin-token'
export const CLICK_ID_KEYS = '1:test-click-id-key-0123456789abcdef0123456789'

/** Environment of an in-process ingest on the test stack, isolated by topic and key prefix. */
export function testIngestEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const { kafkaBrokers, redisUrl } = testStackEnv()
  const prefix = uniqueName('ingest')
  return {
    NODE_ENV: 'test',
    KAFKA_BROKERS: kafkaBrokers.join(','),
    REDIS_URL: redisUrl,
    KAFKA_TOPIC_PREFIX: `${prefix}_`,
    KAFKA_TOPIC_PARTITIONS: '2',
    REDIS_KEY_PREFIX: `${prefix}:`,
    ADMIN_TOKEN,
    CLICK_ID_KEYS,
    PORT: '0',
    // Two shared cores: a GC pause must not turn into a 503 in a correctness test.
    INGEST_MAX_EVENT_LOOP_DELAY_MS: '0',
    // Each test ingest is its own replica with its own journal.
    INGEST_JOURNAL_DIR: path.join(process.env['CLICKJOIN_TEST_DATA_DIR'] ?? tmpdir(), uniqueName('ingest-journal')),
    ...overrides,
  }
}

export async function startTestIngest(
  overrides: Record<string, string> = {},
): Promise<IngestService & { config: IngestConfig; brokers: string[] }> {
  const config = loadIngestConfig(testIngestEnv(overrides))
  const service = await createIngestService(config, { logger: false })
  await service.start()
  return Object.assign(service, { config, brokers: config.kafkaBrokers })
}

export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` }

export async function putCampaign(service: IngestService, id: string, body: Record<string, unknown>): Promise<void> {
  const res = await service.app.inject({ method: 'PUT', url: `/admin/campaigns/${id}`, headers: adminHeaders, payload: body })
  if (res.statusCode !== 200) throw new Error(`PUT campaign ${id}: ${res.statusCode} ${res.body}`)
}

export async function putPartner(service: IngestService, id: string, body: Record<string, unknown>): Promise<void> {
  const res = await service.app.inject({ method: 'PUT', url: `/admin/partners/${id}`, headers: adminHeaders, payload: body })
  if (res.statusCode !== 200) throw new Error(`PUT partner ${id}: ${res.statusCode} ${res.body}`)
}
