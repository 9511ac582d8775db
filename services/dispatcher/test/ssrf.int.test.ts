import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPublisherStore, publisherFromInput } from '@clickjoin/campaigns'
import { waitFor } from '@clickjoin/local-stack/testing'
import { createDispatcherService, type DispatcherService } from '../src/service.ts'
import { createWorld, outcome, startReceiver, type Receiver, type TestWorld } from './harness.ts'

/**
 * SSRF (SPEC §5b) end to end, on loopback only: each destination has a real listener that
 * counts connections, and must end `refused` with none opened. Non-loopback ranges
 * (169.254.169.254, 10.0.0.1, ::ffff:10.0.0.1, …) are covered by the address-policy unit tests.
 */
describe('dispatcher refuses destinations outside DISPATCH_ALLOW_NETWORKS', () => {
  let world: TestWorld
  const services: DispatcherService[] = []
  const receivers: Receiver[] = []

  beforeAll(async () => {
    world = await createWorld('ssrf')
  })
  afterAll(async () => {
    for (const s of services) await s.stop()
    for (const r of receivers) await r.close()
    await world?.close()
  })

  async function refusedRecords(conversionIds: string[]) {
    const ids = new Set(conversionIds)
    return waitFor(
      async () => (await world.deliveries()).filter((r) => ids.has(r.conversion_id)),
      (d) => d.length >= conversionIds.length,
      20_000,
      'a record for every delivery',
    )
  }

  it('127.0.0.2 while only 127.0.0.1/32 is allowed, and [::1]: refused, no connection', async () => {
    const service = await createDispatcherService(world.config({ DISPATCH_ALLOW_NETWORKS: '127.0.0.1/32' }))
    services.push(service)
    await service.start()
    const other = await startReceiver({ host: '127.0.0.2' })
    const ipv6 = await startReceiver({ host: '::1' })
    const allowed = await startReceiver({ host: '127.0.0.1' })
    const byName = await startReceiver({ host: '127.0.0.1' })
    receivers.push(other, ipv6, allowed, byName)
    await world.putPublisher('pub-ssrf', {
      postbacks: [
        { url: `${other.origin}/a?c={click_id}` },
        { url: `${ipv6.origin}/b?c={click_id}` },
        { url: `${allowed.origin}/c?c={click_id}` },
        // A name resolving into the allowed network goes through the guarded lookup and connects.
        { url: `http://localhost:${new URL(byName.origin).port}/d?c={click_id}` },
      ],
    })
    const conversion = outcome('pub-ssrf')
    await world.publishOutcomes([conversion])

    const records = await refusedRecords(Array.from({ length: 4 }, () => conversion.conversion_id))
    const byUrl = Object.fromEntries(records.map((r) => [new URL(r.url).host, r]))
    expect(byUrl[new URL(other.origin).host]).toMatchObject({ state: 'refused', status_code: 0, attempt: 1 })
    expect(byUrl[new URL(other.origin).host]!.error).toMatch(/127\.0\.0\.2 is a loopback address/)
    expect(byUrl[new URL(ipv6.origin).host]).toMatchObject({ state: 'refused', status_code: 0 })
    expect(byUrl[new URL(ipv6.origin).host]!.error).toMatch(/::1 is a loopback address/)
    // The allowed one shows the setup works: the same publisher, the same conversion, delivered.
    expect(byUrl[new URL(allowed.origin).host]).toMatchObject({ state: 'delivered', status_code: 200 })
    expect(byUrl[`localhost:${new URL(byName.origin).port}`]).toMatchObject({ state: 'delivered', status_code: 200 })
    expect(byName.calls).toHaveLength(1)
    expect(other.connections).toBe(0)
    expect(ipv6.connections).toBe(0)
    expect(allowed.connections).toBe(1)
    // Refused is final: nothing is left to retry.
    expect(await service.queue.pendingCount()).toBe(0)
  })

  it('a name that resolves to loopback (localhost) with no allowed networks: refused, no connection', async () => {
    const strict = await createDispatcherService(
      world.config({ DISPATCH_ALLOW_NETWORKS: '', DISPATCHER_GROUP_ID: `${world.groupId}-strict`, REDIS_KEY_PREFIX: `${world.keyPrefix}strict:` }),
    )
    services.push(strict)
    await strict.start()
    const local = await startReceiver({ host: '127.0.0.1' })
    receivers.push(local)
    const port = new URL(local.origin).port
    // The strict instance has its own key prefix: its publishers live there.
    await createPublisherStore({ redis: world.redis, keyPrefix: `${world.keyPrefix}strict:` }).putPublisher(
      publisherFromInput('pub-name', { postbacks: [{ url: `http://localhost:${port}/n?c={click_id}` }] }),
    )
    const conversion = outcome('pub-name')
    await world.publishOutcomes([conversion])
    const [record] = await refusedRecords([conversion.conversion_id])
    expect(record).toMatchObject({ state: 'refused', status_code: 0 })
    expect(record!.error).toMatch(/localhost resolves only to refused addresses: 127\.0\.0\.1 is a loopback address/)
    expect(local.connections).toBe(0)
  })
})
