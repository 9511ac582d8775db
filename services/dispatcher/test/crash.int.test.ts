import { afterAll, describe, expect, it } from 'vitest'
import type { ManagedProcess } from '@clickjoin/local-stack'
import { waitFor } from '@clickjoin/local-stack/testing'
import type { OutcomeV1 } from '@clickjoin/contracts'
import { createWorld, newSecret, outcome, spawnDispatcher, startReceiver, type Receiver, type TestWorld } from './harness.ts'

// The figures; lower them for a quick local run.
const CONVERSIONS = Number(process.env['DISPATCHER_CRASH_CONVERSIONS'] ?? 2_000)
const KILLS = Number(process.env['DISPATCHER_CRASH_KILLS'] ?? 5)

describe('kill -9 of the dispatcher while conversions flow', () => {
  const processes: ManagedProcess[] = []
  let world: TestWorld | undefined
  let receiver: Receiver | undefined
  afterAll(async () => {
    for (const p of processes) await p.kill()
    await receiver?.close()
    await world?.close()
  })

  it(`delivers every version at least once, exactly once after dedup by webhook-id (${CONVERSIONS} conversions, ${KILLS} kills)`, { timeout: 240_000 }, async () => {
    world = await createWorld('disp_crash')
    const secret = newSecret()
    const rx = (receiver = await startReceiver({ secret }))
    await world.putPublisher('pub-crash', { secret, postbacks: [{ url: `${rx.origin}/pb?c={click_id}&s={status}`, statuses: ['approved', 'rejected'] }] })

    // Every 4th conversion is charged back later: a second version.
    const versions: OutcomeV1[] = []
    for (let i = 0; i < CONVERSIONS; i++) {
      const first = outcome('pub-crash')
      versions.push(first)
      if (i % 4 === 3) versions.push({ ...first, version: 2, status: 'rejected', payout: '0', postback_id: `${first.postback_id}-cb` })
    }
    const expected = new Set(versions.map((v) => `${v.conversion_id}:${v.version}`))
    const chunkSize = Math.ceil(versions.length / (KILLS + 1))
    const chunks = Array.from({ length: KILLS + 1 }, (_, k) => versions.slice(k * chunkSize, (k + 1) * chunkSize))
    const env = { DISPATCH_TIMEOUT_MS: '2000', DISPATCH_LEASE_MS: '3000', DISPATCH_FIRST_RETRY_DELAY_MS: '200', DISPATCH_MAX_RETRY_DELAY_MS: '1000' }

    let killedMidStream = 0
    for (let k = 0; k < KILLS; k++) {
      const child = await spawnDispatcher(world, `dispatcher-${k}`, env)
      processes.push(child)
      const before = rx.calls.length
      const sending = world.publishOutcomes(chunks[k]!)
      // A random moment after this instance has started calling.
      await waitFor(() => rx.calls.length, (n) => n > before, 60_000, `instance ${k} to deliver`)
      const killAt = Date.now() + Math.random() * 400
      await waitFor(() => Date.now(), (t) => t >= killAt, 5_000, 'the kill moment')
      const deliveredBeforeKill = new Set(rx.calls.map((c) => c.headers['webhook-id'])).size
      await child.kill()
      await sending
      if (deliveredBeforeKill < expected.size) killedMidStream++
    }
    const last = await spawnDispatcher(world, 'dispatcher-final', env)
    processes.push(last)
    await world.publishOutcomes(chunks[KILLS]!)

    const received = () => new Set(rx.calls.map((c) => String(c.headers['webhook-id'])))
    await waitFor(() => received().size, (n) => n === expected.size, 120_000, 'every version to be delivered')

    const ids = rx.calls.map((c) => String(c.headers['webhook-id']))
    const unexpected = ids.filter((id) => !expected.has(id))
    const missing = [...expected].filter((id) => !received().has(id))
    const unverified = rx.calls.filter((c) => c.verified !== true)
    console.log(
      `dispatcher crash test: ${versions.length} versions of ${CONVERSIONS} conversions, ${KILLS} kills (${killedMidStream} mid-stream), ` +
        `${rx.calls.length} calls received, ${rx.calls.length - received().size} duplicates removed by webhook-id`,
    )
    expect(missing).toEqual([])
    expect(unexpected).toEqual([])
    expect(unverified).toEqual([])
    expect(received().size).toBe(expected.size)
    expect(killedMidStream).toBe(KILLS)
    // Each call's URL belongs to its webhook-id: a duplicate is the same call again, never another conversion's.
    const byId = new Map(versions.map((v) => [`${v.conversion_id}:${v.version}`, v]))
    for (const call of rx.calls) {
      const v = byId.get(String(call.headers['webhook-id']))!
      expect([call.url.searchParams.get('c'), call.url.searchParams.get('s')]).toEqual([v.click_id, v.status])
    }
  })
})
