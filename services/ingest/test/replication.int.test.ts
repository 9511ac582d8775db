import { afterAll, beforeAll, expect, it } from 'vitest'
import { createKafka } from '@clickjoin/kafka'
import { startKafkaCluster, type KafkaCluster } from '@clickjoin/local-stack'
import { readTopic, tempDir, waitFor } from '@clickjoin/local-stack/testing'
import type { ClickV1 } from '@clickjoin/contracts'
import { putCampaign, putPartner, startTestIngest } from './harness.ts'

// SPEC §7: with KAFKA_REPLICATION_FACTOR=3 topics get min.insync.replicas=2, so an acknowledged
// click is on two brokers and one broker's death loses none.
const SECRET = 'partner-secret-0123456789'
let cluster: KafkaCluster
let svc: Awaited<ReturnType<typeof startTestIngest>> | undefined

beforeAll(async () => {
  cluster = await startKafkaCluster({ dataDir: await tempDir('kafka-cluster') })
})
afterAll(async () => {
  await svc?.stop().catch(() => undefined)
  await cluster?.stop()
})

it('3 brokers, replication factor 3: kill -9 of one under load loses no acknowledged click; S2S answers 200 again after the election', async () => {
  svc = await startTestIngest({ KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_REPLICATION_FACTOR: '3', KAFKA_TOPIC_PARTITIONS: '3' })
  await putPartner(svc, 'net', { secret: SECRET })
  await putCampaign(svc, 'c', { destination: 'https://shop.example/?cid={click_id}', status: 'active' })

  const admin = createKafka({ brokers: cluster.brokers, clientId: 'test-replication' }).admin()
  await admin.connect()
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [svc.topics.clicks] })
    expect(topics[0]!.partitions.map((p) => p.replicas.length)).toEqual([3, 3, 3])
    // The broker asked may not know the new topic yet (metadata spreads to the three brokers
    // asynchronously): ask until one answers, then check the value.
    const clicksTopic = svc.topics.clicks
    const minInsync = await waitFor(
      () =>
        admin
          .describeConfigs({ resources: [{ type: 2, name: clicksTopic, configNames: ['min.insync.replicas'] }], includeSynonyms: false })
          .then((configs) => configs.resources[0]!.configEntries[0]!.configValue, (err: unknown) => `not yet: ${String(err)}`),
      (value) => !value.startsWith('not yet'),
      30_000,
      "the topic's min.insync.replicas",
    )
    expect(minInsync).toBe('2')
  } finally {
    await admin.disconnect()
  }

  const app = svc.app
  const answers: Array<Promise<{ status: number; clickId: string | undefined }>> = []
  const load = async (ms: number) => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      answers.push(
        app.inject({ url: '/c/c', headers: { 'user-agent': `agent-${answers.length}` } }).then((res) => ({
          status: res.statusCode,
          clickId: res.headers.location ? new URL(res.headers.location as string).searchParams.get('cid')! : undefined,
        })),
      )
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  await load(2_000)
  await cluster.nodes[0]!.process.kill()
  await load(8_000)
  const results = await Promise.all(answers)
  for (const r of results) expect(r.status).toBe(302)

  // Once the partitions have new leaders, partners' postbacks are acknowledged again, each of them.
  let probe = 0
  await waitFor(async () => (await app.inject({ url: `/postback?partner=net&token=${SECRET}&click_id=probe-${probe++}` })).statusCode, (s) => s === 200, 60_000, 'a postback to be acknowledged after the election')
  const postbacks = await Promise.all(Array.from({ length: 50 }, (_, i) => app.inject({ url: `/postback?partner=net&token=${SECRET}&click_id=after-${i}` })))
  expect(postbacks.map((r) => r.statusCode)).toEqual(Array.from({ length: 50 }, () => 200))

  await waitFor(() => svc!.journal.stats().events, (n) => n === 0, 60_000, 'the journal (if any) to be delivered')
  const stored = new Set((await readTopic(cluster.brokers.slice(1), svc.topics.clicks, 60_000)).map((m) => (JSON.parse(m.value) as ClickV1).click_id))
  const missing = results.filter((r) => !stored.has(r.clickId!))
  console.log(`replication: ${results.length} clicks answered 302 around a kill -9 of one of 3 brokers; ${missing.length} missing; journaled ${svc.journal.stats().events === 0 ? 'and delivered' : 'still waiting'}`)
  expect(missing).toEqual([])
})
