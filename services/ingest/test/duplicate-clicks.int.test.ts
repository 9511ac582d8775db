import { afterAll, beforeAll, expect, it } from 'vitest'
import { readTopic, waitFor } from '@clickjoin/local-stack/testing'
import type { ClickV1 } from '@clickjoin/contracts'
import { loadIngestConfig } from '../src/config.ts'
import { createIngestService, type IngestService } from '../src/service.ts'
import { putCampaign, testIngestEnv } from './harness.ts'

// Two replicas sharing one Redis key prefix and topics; one clock the test moves.
let clock = Date.now()
const replicas: IngestService[] = []
let brokers: string[]

beforeAll(async () => {
  const env = testIngestEnv()
  for (let i = 0; i < 2; i++) {
    const config = loadIngestConfig({ ...env, ...testIngestEnv({ KAFKA_TOPIC_PREFIX: env['KAFKA_TOPIC_PREFIX']!, REDIS_KEY_PREFIX: env['REDIS_KEY_PREFIX']! }) })
    brokers = config.kafkaBrokers
    const service = await createIngestService(config, { logger: false, clock: () => clock })
    await service.start()
    replicas.push(service)
  }
  await putCampaign(replicas[0]!, 'c', { destination: 'https://shop.example/', status: 'active' })
  await waitFor(() => replicas[1]!.configStore.campaign('c'), (c) => c !== undefined, 10_000, 'the campaign on replica 2')
})
afterAll(async () => {
  for (const r of replicas) await r.stop()
})

async function click(replica: IngestService, ip: string): Promise<string> {
  const res = await replica.app.inject({ url: '/c/c?format=json', headers: { 'user-agent': 'Mozilla/5.0 dup' }, remoteAddress: ip })
  expect(res.statusCode).toBe(200)
  return res.json<{ click_id: string }>().click_id
}

it('flags clicks at 0, 50 and 70 s on alternating replicas: the window slides and is shared', async () => {
  const [a, b] = [replicas[0]!, replicas[1]!]
  const ip = '198.51.100.10'
  const start = clock
  const ids: string[] = []
  ids.push(await click(a, ip))
  // Replica b hears of it by pub/sub, without a round trip on its own click path.
  await waitFor(() => b.duplicates.check('c', ip, 'Mozilla/5.0 dup').duplicate, (d) => d, 5_000, 'replica b to know the click')
  clock = start + 50_000
  ids.push(await click(b, ip))
  clock = start + 70_000
  await waitFor(() => a.duplicates.check('c', ip, 'Mozilla/5.0 dup').duplicate, (d) => d, 5_000, 'replica a to know the 50 s click')
  ids.push(await click(a, ip))
  clock = start + 131_000 // 61 s after the last one
  ids.push(await click(b, ip))

  const byId = new Map((await readTopic(brokers, a.topics.clicks)).map((m) => JSON.parse(m.value) as ClickV1).map((c) => [c.click_id, c.is_duplicate]))
  expect(ids.map((id) => byId.get(id))).toEqual([false, true, true, false])
})
