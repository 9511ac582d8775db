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

/** The tracking-link campaigns of the click tests: macros, a plain one, passthrough, paused with and without a fallback. */
export async function putTrackingCampaigns(service: IngestService): Promise<void> {
  await putCampaign(service, 'macros', {
    destination: 'https://shop.example/land/{campaign_id}?cid={click_id}&p={pub}&s={sub1},{sub2},{sub3},{sub4},{sub5}&src={src}&cr={cr}',
    status: 'active',
    window_seconds: 86_400,
  })
  await putCampaign(service, 'plain', { destination: 'https://shop.example/offer?x=1#frag', status: 'active', click_id_param: 'aff_sub' })
  await putCampaign(service, 'pass', { destination: 'https://shop.example/p?c={click_id}', status: 'active', passthrough: true })
  await putCampaign(service, 'paused', { destination: 'https://shop.example/', status: 'paused', fallback_url: 'https://fallback.example/sorry' })
  await putCampaign(service, 'paused-nofb', { destination: 'https://shop.example/', status: 'paused' })
}
