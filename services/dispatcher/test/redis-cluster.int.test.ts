import { afterAll, describe, expect, it } from 'vitest'
import { createPublisherStore, publisherFromInput } from '@clickjoin/campaigns'
import { acquireTestRedisCluster } from '@clickjoin/local-stack'
import { tempDir, waitFor } from '@clickjoin/local-stack/testing'
import { createRedisClient, primaries, scanKeys, type RedisClient } from '@clickjoin/redis'
import { QUEUE_SHARDS } from '../src/delivery-queue.ts'
import { createDispatcherService, type DispatcherService } from '../src/service.ts'
import { createWorld, newSecret, outcome, startReceiver, type Receiver, type TestWorld } from './harness.ts'

/**
 * REDIS_CLUSTER_NODES switches the dispatcher to a 3-primary Redis Cluster: every script and
 * MULTI of the queue touches one hash slot (its shard's tag), the shards spread over the
 * primaries, and deliveries, retries and a redelivery work as on one Redis.
 */
describe('the dispatcher on a Redis Cluster', () => {
  let world: TestWorld | undefined
  let service: DispatcherService | undefined
  let receiver: Receiver | undefined
  let cluster: RedisClient | undefined
  let release = async (): Promise<void> => undefined

  afterAll(async () => {
    await receiver?.close()
    await service?.stop()
    cluster?.disconnect()
    await world?.close()
    await release()
  })

  it('delivers, retries and redelivers with its queue sharded over the primaries', { timeout: 120_000 }, async () => {
    const acquired = await acquireTestRedisCluster(await tempDir('disp-cluster'))
    release = acquired.release
    world = await createWorld('disp_cluster')
    cluster = createRedisClient({ clusterNodes: acquired.nodes.join(',') })
    const secret = newSecret()
    // Every webhook-id fails once (503), then is delivered: a retry recorded through the cluster.
    const seen = new Set<string>()
    const rx = (receiver = await startReceiver({
      secret,
      answer: (call) => {
        const id = String(call.headers['webhook-id'])
        if (seen.has(id)) return 200
        seen.add(id)
        return 503
      },
    }))
    await createPublisherStore({ redis: cluster, keyPrefix: world.keyPrefix }).putPublisher(
      publisherFromInput('pub-cluster', { secret, postbacks: [{ url: `${rx.origin}/pb?c={click_id}` }] }),
    )
    service = await createDispatcherService(
      world.config({
        REDIS_CLUSTER_NODES: acquired.nodes.join(','),
        DISPATCH_FIRST_RETRY_DELAY_MS: '100',
        DISPATCH_MAX_RETRY_DELAY_MS: '300',
        DISPATCH_BREAKER_FAILURES: '1000',
      }),
    )
    await service.start()

    const conversions = Array.from({ length: 64 }, () => outcome('pub-cluster'))
    await world.publishOutcomes(conversions)
    const expected = new Set(conversions.map((c) => `${c.conversion_id}:1`))
    await waitFor(() => rx.calls.length, (n) => n >= 2 * conversions.length, 60_000, 'a failed and a delivered call per conversion')
    expect(new Set(rx.calls.map((c) => String(c.headers['webhook-id'])))).toEqual(expected)
    expect(rx.calls).toHaveLength(2 * conversions.length)
    for (const call of rx.calls) expect(call.verified).toBe(true)
    await waitFor(() => service!.queue.pendingCount(), (n) => n === 0, 20_000, 'no pending delivery left')

    // The finished jobs are spread over the primaries, by shard.
    const jobKeysPerNode = await Promise.all(
      primaries(cluster).map(async (node) => (await scanKeys(node, `${world!.keyPrefix}dispatch:*:job:*`)).length),
    )
    expect(jobKeysPerNode.reduce((a, b) => a + b, 0)).toBe(conversions.length)
    expect(jobKeysPerNode.filter((n) => n > 0).length).toBeGreaterThan(1)
    expect(QUEUE_SHARDS).toBeGreaterThan(primaries(cluster).length)

    // A delivered job made due again is called once more, with the same webhook-id.
    const [first] = conversions
    const records = await waitFor(
      async () => (await world!.deliveries()).filter((r) => r.conversion_id === first!.conversion_id),
      (d) => d.some((r) => r.state === 'delivered'),
      20_000,
      'the first conversion delivered',
    )
    const jobId = records.find((r) => r.state === 'delivered')!.job_id
    const callsBefore = rx.calls.length
    expect(await service.queue.redeliver([jobId, 'no-such-job'], Date.now())).toEqual([jobId])
    await waitFor(() => rx.calls.length, (n) => n === callsBefore + 1, 20_000, 'the redelivered call')
    expect(rx.calls.at(-1)!.headers['webhook-id']).toBe(`${first!.conversion_id}:1`)
  })
})
