/**
 * What one query over the sink's SQL over HTTP costs the sink, as the attributor sends them in
 * the pipeline bench: a `conversions FINAL WHERE conversion_id IN [...]` of 25 columns and a few
 * IDs per round (its cold conversion lookup, asked for every postback with a txn_id), against
 * `SELECT 1` (the fixed cost of a query: HTTP, session, chDB's parse and plan), the same lookup
 * of 3 columns and without FINAL. A fresh embedded database gets BENCH_PARTS inserts of BENCH_ROWS_PER_PART conversions
 * (the sink's inserts at a trickle: a part each); then each query is sent BENCH_QUERIES times,
 * one after the other, by a client without keep-alive (as the attributor's cold-tier client),
 * and the process's CPU (Node's thread and the engine's, `process.cpuUsage`) per query printed.
 *
 *   node --import tsx services/sink/bench/sql-lookup.ts
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createClient } from '@clickhouse/client'
import { clickHouseTarget, createClickHouse } from '@clickjoin/clickhouse'
import { migrateSchema } from '../src/migrations/index.ts'
import { attributorConversionLookup } from './attributor-lookup.ts'
import { createSqlHttpServer } from '../src/sql-http.ts'

const parts = Number(process.env['BENCH_PARTS'] ?? 200)
const rowsPerPart = Number(process.env['BENCH_ROWS_PER_PART'] ?? 50)
const queries = Number(process.env['BENCH_QUERIES'] ?? 300)
const idsPerQuery = Number(process.env['BENCH_IDS_PER_QUERY'] ?? 3)
const db = 'lookup'
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined }

const dataDir = await mkdtemp(path.join(tmpdir(), 'sink-sql-lookup-'))
const target = clickHouseTarget(undefined, dataDir)
const writer = createClickHouse(target)
const server = createSqlHttpServer({ openSession: () => createClickHouse(target), log: quiet })
try {
  await migrateSchema(writer, { database: db, retentionDays: { clicks: 0, postbacks: 0, conversions: 0, dead_letters: 0 }, log: quiet })
  for (let p = 0; p < parts; p++) {
    await writer.command({
      query: `INSERT INTO ${db}.conversions (conversion_id, version, txn_id, partner_id, click_id, conversion_ts, updated_at)
              SELECT concat('bench:t', toString(number)), 1, concat('t', toString(number)), 'bench', concat('c', toString(number)), now64(3), now64(3)
              FROM numbers(${p * rowsPerPart}, ${rowsPerPart})`,
    })
  }
  const partsLeft = await (await writer.query({ query: `SELECT count() AS n FROM system.parts WHERE database = '${db}' AND table = 'conversions' AND active`, format: 'JSONEachRow' })).json<{ n: string }>()
  const port = await server.listen(0, '127.0.0.1')
  const client = createClient({ url: `http://127.0.0.1:${port}`, keep_alive: { enabled: false } })
  const total = parts * rowsPerPart
  const ids = (i: number) => Array.from({ length: idsPerQuery }, (_, j) => `bench:t${(i * 7919 + j * 104729) % (total * 2)}`)
  const lookup = (i: number, columns?: string) => attributorConversionLookup(db, ids(i), columns)
  const variants: [string, (i: number) => string][] = [
    ['SELECT 1', () => 'SELECT 1'],
    ["the attributor's lookup", (i) => lookup(i)],
    ['the same, 3 columns', (i) => lookup(i, 'conversion_id, version, txn_id')],
    ['the same, no FINAL', (i) => lookup(i).replace(' FINAL', '')],
  ]
  console.log(`${total} conversions in ${parts} inserts (${partsLeft[0]?.n} active parts at the start), ${idsPerQuery} IDs per lookup, ${queries} queries each`)
  for (let round = 0; round < 2; round++) {
    for (const [name, query] of variants) {
      const cpu = process.cpuUsage()
      const started = performance.now()
      for (let i = 0; i < queries; i++) await (await client.query({ query: query(i), format: 'JSONEachRow' })).json()
      const used = process.cpuUsage(cpu)
      const ms = performance.now() - started
      console.log(`  ${name.padEnd(32)} ${((used.user + used.system) / 1_000 / queries).toFixed(2)} ms CPU, ${(ms / queries).toFixed(2)} ms wall per query`)
    }
  }
  await client.close()
} finally {
  await server.close()
  await writer.close()
  await rm(dataDir, { recursive: true, force: true })
}
