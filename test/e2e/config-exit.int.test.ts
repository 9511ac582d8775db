import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { serviceEntry } from '@clickjoin/local-stack'

/**
 * Every service refuses a bad environment the same way: exit 78 (EX_CONFIG) before touching
 * Kafka, Redis or ClickHouse, with the variable's name on stderr. A new service is one line.
 */
const badEnvironments: [service: string, variable: string, value: string][] = [
  ['ingest', 'KAFKA_TOPIC_PREFIX', 'bad prefix!'],
  ['ingest', 'INGEST_KAFKA_ACK_TIMEOUT_MS', 'soon'],
  ['sink', 'KAFKA_TOPIC_PREFIX', 'bad prefix!'],
  ['sink', 'CLICKHOUSE_DATABASE', 'drop table'],
  ['dispatcher', 'DISPATCH_ALLOW_NETWORKS', '10.0.0.0/8,bogus'],
  ['attributor', 'REDIS_KEY_PREFIX', 'cj{shard}:'],
]

function runWith(service: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', serviceEntry(service)],
      // Unreachable endpoints: a service that got past its configuration would hang or fail otherwise.
      { env: { ...process.env, KAFKA_BROKERS: '127.0.0.1:1', REDIS_URL: 'redis://127.0.0.1:1', PORT: '0', ...env }, timeout: 60_000 },
      (error, _stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }),
    )
  })
}

describe('a bad variable', () => {
  it.each(badEnvironments)('%s with %s=%j exits 78 naming it', async (service, variable, value) => {
    const { code, stderr } = await runWith(service, { [variable]: value })
    expect(code).toBe(78)
    expect(stderr).toContain(variable)
    expect(stderr).not.toMatch(/\n\s+at /) // a message, not a stack trace
  })
})
