import { afterAll, describe, expect, it } from 'vitest'
import type { ManagedProcess } from '@clickjoin/local-stack'
import { waitFor } from '@clickjoin/local-stack/testing'
import { createEventWriter, createWorld, groupMembers, PARTITIONS, putCampaigns, spawnAttributor, type EventWriter, type TestWorld } from './harness.ts'
import { buildWorkload, describeWrong, mismatches, outcomeCount, sendChunk, verifyWorkload, WORKLOAD_CAMPAIGN_ID, workloadCampaign } from './workload.ts'

const CONVERSIONS = 4_000
// Long enough that the takeover pause never turns a late click into unknown_click.
const GRACE_MS = 30_000
/** What issue 12 promises: a member killed with -9 is replaced within this. */
const TAKEOVER_MS = 15_000

describe('kill -9 of one of two attributors under load', () => {
  const processes: ManagedProcess[] = []
  let writer: EventWriter | undefined
  let world: TestWorld | undefined
  afterAll(async () => {
    await writer?.stop()
    for (const p of processes) await p.kill()
    await world?.stop()
  })

  it(`the other consumes the dead one's partitions within ${TAKEOVER_MS / 1000} s, nothing lost or doubled`, { timeout: 240_000 }, async () => {
    world = await createWorld('attr_takeover')
    await putCampaigns(world, { [WORKLOAD_CAMPAIGN_ID]: workloadCampaign })
    const workload = buildWorkload(CONVERSIONS, 2)
    writer = await createEventWriter(world)
    // The service's own session timeout (no ATTRIBUTOR_SESSION_TIMEOUT_MS): the shared 10 s.
    const [doomed, survivor] = [
      await spawnAttributor(world, { label: 'takeover-doomed', graceMs: GRACE_MS }),
      await spawnAttributor(world, { label: 'takeover-survivor', graceMs: GRACE_MS }),
    ]
    processes.push(doomed, survivor)
    await waitFor(() => groupMembers(world!), (g) => g.stable && g.members.length === 2, 90_000, 'both instances in the group')

    const sending = sendChunk(writer, workload.chunks[0]!)
    await waitFor(() => outcomeCount(world!), (n) => n > 0, 60_000, 'the first outcomes')
    const killedAt = Date.now()
    await doomed.kill()

    // Consuming again: the group has rebalanced onto the survivor alone, and outcomes flow.
    await waitFor(() => groupMembers(world!), (g) => g.stable && g.members.length === 1, TAKEOVER_MS, 'the survivor to own every partition')
    const rebalancedAfterMs = Date.now() - killedAt
    await sending
    const before = await outcomeCount(world)
    await sendChunk(writer, workload.chunks[1]!)
    await waitFor(() => outcomeCount(world!), (n) => n > before, 30_000, 'the survivor to publish')

    const result = await verifyWorkload(world, workload, 120_000)
    const wrong = mismatches(result.actual, workload.expected)
    expect({ wrong: wrong.length, first: wrong.slice(0, 5) }, describeWrong(workload, wrong, PARTITIONS)).toEqual({ wrong: 0, first: [] })
    console.log(`takeover: group rebalanced onto the survivor ${rebalancedAfterMs} ms after kill -9; ${result.repeats.repeats} identical repeats`)
  })
})
