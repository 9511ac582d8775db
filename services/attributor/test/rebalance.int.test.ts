import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '@clickjoin/local-stack'
import { tempDir, waitFor } from '@clickjoin/local-stack/testing'
import {
  createEventWriter,
  createWorld,
  PARTITIONS,
  putCampaigns,
  REDIS_TARGETS,
  startAttributor,
  type InProcessAttributor,
  type RedisTarget,
  type TestWorld,
} from './harness.ts'
import {
  buildWorkload,
  describeWrong,
  mismatches,
  outcomeCount,
  sendChunk,
  verifyWorkload,
  WORKLOAD_CAMPAIGN_ID,
  workloadCampaign,
} from './workload.ts'

const CONVERSIONS = Number(process.env['ATTRIBUTOR_REBALANCE_CONVERSIONS'] ?? 4_000)
// Long enough that a rebalance or a Redis restart on a loaded machine never turns a late click
// into unknown_click (the grace is wall-clock time; the crash test uses the same).
const GRACE_MS = 30_000
// Above each case's own waits (setup, progress, then up to 90 or 120 s for the outcomes), so that
// a slow run fails with the conversions that are wrong, not with vitest's bare 120 s timeout.
const CASE_TIMEOUT_MS = 240_000

describe.each(REDIS_TARGETS)('the same outcomes whatever happens to the group and to Redis (%s)', (target) => {
  const running: InProcessAttributor[] = []
  const writers: Awaited<ReturnType<typeof createEventWriter>>[] = []
  // The Redis the second case kills: a server or a whole cluster of its own.
  let redisServer: RedisServer | undefined
  let redisCluster: RedisCluster | undefined
  const worlds: TestWorld[] = []
  afterAll(async () => {
    for (const w of writers) await w.stop()
    for (const a of running) await a.stop().catch(() => undefined)
    for (const w of worlds) await w.stop()
    await redisServer?.stop()
    await redisCluster?.stop()
  })

  it('a second attributor joins and leaves mid-stream', { timeout: CASE_TIMEOUT_MS }, async () => {
    const world = await createWorld('attr_rebalance', target)
    worlds.push(world)
    await putCampaigns(world, { [WORKLOAD_CAMPAIGN_ID]: workloadCampaign })
    const workload = buildWorkload(CONVERSIONS, 6)
    const writer = await createEventWriter(world)
    writers.push(writer)

    const first = await startAttributor(world, { graceMs: GRACE_MS })
    running.push(first)
    await sendChunk(writer, workload.chunks[0]!)
    await sendChunk(writer, workload.chunks[1]!)

    const second = await startAttributor(world, { graceMs: GRACE_MS })
    running.push(second)
    const before = await outcomeCount(world)
    await sendChunk(writer, workload.chunks[2]!)
    await sendChunk(writer, workload.chunks[3]!)
    await waitFor(() => outcomeCount(world), (n) => n > before, 30_000, 'progress with two members')

    await second.stop() // leaves mid-stream: its partitions go back to the first
    await sendChunk(writer, workload.chunks[4]!)
    await sendChunk(writer, workload.chunks[5]!)

    const result = await verifyWorkload(world, workload, 90_000)
    const wrong = mismatches(result.actual, workload.expected)
    expect({ wrong: wrong.length, first: wrong.slice(0, 5) }, describeWrong(workload, wrong, PARTITIONS)).toEqual({ wrong: 0, first: [] })
  })

  /** Starts this case's own Redis (or cluster); `crash` kills it -9 and starts it again on the same files and ports. */
  async function ownRedis(): Promise<{ redis: RedisTarget; crash(): Promise<void> }> {
    const dataDir = path.join(await tempDir('attributor-redis'), 'redis')
    if (target === 'redis') {
      redisServer = await startRedisServer({ dataDir, port: 0 })
      return {
        redis: { url: redisServer.url },
        async crash() {
          await redisServer!.process.kill() // kill -9: only what the AOF holds survives
          redisServer = await startRedisServer({ dataDir, port: redisServer!.port })
        },
      }
    }
    redisCluster = await startRedisCluster({ dataDir })
    const ports = redisCluster.nodes.map((node) => Number(node.slice(node.lastIndexOf(':') + 1)))
    return {
      redis: { clusterNodes: redisCluster.nodes.join(',') },
      async crash() {
        // Every primary at once, -9: only what each node's AOF holds survives.
        await Promise.all(redisCluster!.processes.map((p) => p.kill()))
        redisCluster = await startRedisCluster({ dataDir, ports })
      },
    }
  }

  it('Redis is killed and restarted from its append-only file mid-stream', { timeout: CASE_TIMEOUT_MS }, async () => {
    const own = await ownRedis()
    const world = await createWorld('attr_aof')
    worlds.push(world)
    await putCampaigns(world, { [WORKLOAD_CAMPAIGN_ID]: workloadCampaign }, own.redis)
    const workload = buildWorkload(CONVERSIONS, 4)
    const writer = await createEventWriter(world)
    writers.push(writer)

    const attributor = await startAttributor(world, { graceMs: GRACE_MS, redis: own.redis })
    running.push(attributor)
    await sendChunk(writer, workload.chunks[0]!)
    const sending = sendChunk(writer, workload.chunks[1]!)
    const before = await outcomeCount(world)
    await waitFor(() => outcomeCount(world), (n) => n > before, 30_000, 'progress before the Redis crash')

    await own.crash()
    await sending
    await sendChunk(writer, workload.chunks[2]!)
    await sendChunk(writer, workload.chunks[3]!)

    const result = await verifyWorkload(world, workload, 120_000)
    const wrong = mismatches(result.actual, workload.expected)
    expect({ wrong: wrong.length, first: wrong.slice(0, 5) }, describeWrong(workload, wrong, PARTITIONS)).toEqual({ wrong: 0, first: [] })
  })
})
