/**
 * Redis memory of the hot tier, measured as `used_memory` growth (everything Redis allocates:
 * keys, values, expiry entries, encodings), not per-key MEMORY USAGE:
 *
 *   node --import tsx services/attributor/bench/memory.ts
 *
 * Records BENCH_CLICKS (default 1,000,000) clicks through the attributor's own store (the same
 * script and layout as in production), their click IDs made at 2,000 clicks/s, once with 1-day
 * campaign windows and once with 365-day windows, each into an empty Redis of its own.
 * Uses a local redis-server (started here).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import { generateClickId } from '@clickjoin/click-id'
import { startRedisServer } from '@clickjoin/local-stack'
import { writeBenchResult } from '@clickjoin/local-stack/bench'
import { createAttributorStore } from '../src/store.ts'
import { makeClick, testKeyring } from '../test/harness.ts'

const CLICKS = Number(process.env['BENCH_CLICKS'] ?? 1_000_000)
const RATE = 2_000
const BATCH = 5_000
const DAY = 86_400

async function usedMemoryAfter(windowSeconds: number): Promise<{ bytes: number; seconds: number }> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'attributor-memory-'))
  const server = await startRedisServer({ dataDir: path.join(dataDir, 'redis'), port: 0 })
  const redis = new Redis(server.url)
  try {
    const store = createAttributorStore(
      redis,
      { keyPrefix: 'cj:', hotSeconds: 172_800, clickTtlMarginSeconds: 3_660, conversionTtlSeconds: 176_460 },
      (_op, work) => work(),
    )
    const used = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
    await store.recordClicks([]) // scripts loaded before the baseline
    const before = await used()
    const start = Date.now() - CLICKS / RATE * 1000
    const campaign = { destination: 'https://shop.example/', status: 'active' as const, window_seconds: windowSeconds }
    const began = performance.now()
    for (let i = 0; i < CLICKS; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, CLICKS - i) }, (_, j) => {
        const n = i + j
        const createdAt = Math.floor(start + (n * 1000) / RATE)
        const click = makeClick('load', campaign, createdAt, {
          click_id: generateClickId(testKeyring, createdAt),
          publisher_id: `pub-${n % 100}`,
          sub1: n % 3 === 0 ? `s${n % 997}` : '',
        })
        return { click, clickIdCreatedAtMs: createdAt }
      })
      await store.recordClicks(batch)
    }
    const seconds = (performance.now() - began) / 1000
    return { bytes: (await used()) - before, seconds }
  } finally {
    redis.disconnect()
    await server.stop()
    await rm(dataDir, { recursive: true, force: true })
  }
}

const oneDay = await usedMemoryAfter(DAY)
const oneYear = await usedMemoryAfter(365 * DAY)
const perClick = oneDay.bytes / CLICKS
console.log(`attributor hot-tier memory: ${CLICKS.toLocaleString('en')} clicks made at ${RATE}/s, hot period 2 days`)
console.log(`  used_memory growth, 1-day windows:   ${(oneDay.bytes / 1e6).toFixed(1)} MB = ${perClick.toFixed(1)} bytes per click (${Math.round(CLICKS / oneDay.seconds).toLocaleString('en')} clicks/s through the store)`)
console.log(`  used_memory growth, 365-day windows: ${(oneYear.bytes / 1e6).toFixed(1)} MB = ${(oneYear.bytes / CLICKS).toFixed(1)} bytes per click`)
console.log(`  365-day / 1-day: ${(oneYear.bytes / oneDay.bytes).toFixed(3)}`)
await writeBenchResult('attributor-memory', [
  {
    measure: 'Redis used_memory growth per hot click',
    value: Math.round(perClick * 10) / 10,
    unit: 'bytes',
    goal: { atMost: 64, of: 'value' },
    detail: `${CLICKS} clicks, used_memory growth`,
  },
  {
    measure: 'used_memory with 365-day windows vs 1-day windows',
    value: Math.round((oneYear.bytes / oneDay.bytes) * 1000) / 1000,
    unit: 'ratio',
    goal: { atMost: 1.1, of: 'value' },
    detail: `${CLICKS} clicks each`,
  },
])
