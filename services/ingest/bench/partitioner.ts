/**
 * The partitioner's cost per message: @platformatic/kafka's `compatibilityPartitioner` (murmur2
 * in BigInts) against packages/kafka's `javaPartitioner` (the same hash in 32-bit integers),
 * alternately in one process, on click-ID-sized keys (32 bytes); median of BENCH_ROUNDS (5)
 * rounds of 200,000 calls, min–max.
 *
 *   node --import tsx services/ingest/bench/partitioner.ts
 */
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { medianWithRange } from '@clickjoin/local-stack/bench'
import { javaPartitioner } from '../../../packages/kafka/src/murmur2.ts'

// @platformatic/kafka is packages/kafka's dependency, not ingest's: resolve it from there.
const fromKafka = createRequire(new URL('../../../packages/kafka/package.json', import.meta.url))
const { compatibilityPartitioner } = (await import(pathToFileURL(fromKafka.resolve('@platformatic/kafka')).href)) as {
  compatibilityPartitioner: (message: unknown, key: Buffer) => number
}
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5)
const calls = 200_000
const keys = Array.from({ length: 4096 }, () => Buffer.from(randomBytes(24).toString('base64url')))
const candidates: Array<[string, (key: Buffer) => number]> = [
  ['compatibilityPartitioner (@platformatic/kafka, BigInt)', (key) => compatibilityPartitioner({ key }, key)],
  ['javaPartitioner (packages/kafka, Math.imul)', (key) => javaPartitioner(undefined, key)],
]
const times = new Map<string, number[]>(candidates.map(([name]) => [name, []]))
let sink = 0
for (let round = 0; round < rounds + 1; round++) {
  for (const [name, partition] of candidates) {
    const t = performance.now()
    for (let i = 0; i < calls; i++) sink ^= partition(keys[i & 4095]!)
    const us = ((performance.now() - t) * 1000) / calls
    if (round > 0) times.get(name)!.push(us) // round 0: warm-up
  }
}
for (const [name, us] of times) console.log(`${name.padEnd(56)} ${medianWithRange(us, (n) => n.toFixed(3)).text} µs`)
if (sink === 0.5) console.log(sink)
