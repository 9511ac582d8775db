import { execFile } from 'node:child_process'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, repoRoot, startProcess, waitUntilReady, type ManagedProcess } from '@clickjoin/local-stack'
import { tempDir, uniqueName, waitFor } from '@clickjoin/local-stack/testing'
import { createDispatcherService, type DispatcherService } from '../src/service.ts'
import { createWorld, outcome, startReceiver, type Receiver, type TestWorld } from './harness.ts'

const run = promisify(execFile)

/**
 * What an operator sees: every attempt as a row of `postback_deliveries` (written by the real
 * sink from the deliveries topic), `clickjoin deliveries` over it, and `clickjoin redeliver`
 * bringing a failed delivery back once the receiver is fixed.
 */
describe('postback_deliveries, clickjoin deliveries and clickjoin redeliver', () => {
  let world: TestWorld | undefined
  let service: DispatcherService | undefined
  let sink: ManagedProcess | undefined
  let receiver: Receiver | undefined
  afterAll(async () => {
    await receiver?.close()
    await service?.stop()
    await sink?.stop()
    await world?.close()
  })

  it('records every attempt and lets the operator list and redeliver', { timeout: 180_000 }, async () => {
    world = await createWorld('disp_rows')
    let broken = true
    const rx = (receiver = await startReceiver({ answer: (call) => (call.url.pathname === '/down' && broken ? 503 : 200) }))
    await world.putPublisher('pub-ok', { postbacks: [{ url: `${rx.origin}/up?c={click_id}` }] })
    await world.putPublisher('pub-down', { postbacks: [{ url: `${rx.origin}/down?c={click_id}` }] })
    // Retry for about one second only, so the failing delivery reaches `failed` in the test; the
    // failures open the host's circuit, which here closes again after half a second.
    service = await createDispatcherService(
      world.config({
        DISPATCH_RETRY_HOURS: '0.0003',
        DISPATCH_FIRST_RETRY_DELAY_MS: '200',
        DISPATCH_MAX_RETRY_DELAY_MS: '400',
        DISPATCH_BREAKER_COOLDOWN_MS: '500',
      }),
    )
    await service.start()
    const dispatcherUrl = service.url()

    const sqlPort = await freePort()
    const database = uniqueName('cj_disp')
    sink = startProcess('sink', process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: path.join(repoRoot, 'services/sink'),
      logFile: path.join(await tempDir('dispatcher-sink'), 'sink.log'),
      env: {
        ...process.env,
        KAFKA_BROKERS: world.brokers.join(','),
        KAFKA_TOPIC_PREFIX: `${world.name}.`,
        KAFKA_TOPIC_PARTITIONS: '3',
        SINK_CONSUMER_GROUP: `${world.name}-sink`,
        CLICKHOUSE_DATABASE: database,
        CLICKHOUSE_DATA_DIR: path.join(await tempDir('dispatcher-chdb'), 'clickhouse'),
        PORT: '0',
        CLICKHOUSE_HTTP_PORT: String(sqlPort),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      },
    })
    const sql = async (query: string): Promise<string> => {
      const res = await fetch(`http://127.0.0.1:${sqlPort}/?default_format=TabSeparated`, { method: 'POST', body: query })
      if (!res.ok) throw new Error(await res.text())
      return res.text()
    }
    await waitUntilReady(sink, () => sql('SELECT 1').then((t) => t.trim() === '1'), 120_000, 'SQL over HTTP')

    const ok = outcome('pub-ok')
    const down = outcome('pub-down')
    await world.publishOutcomes([ok, down])
    const count = (where: string) => sql(`SELECT count() FROM ${database}.postback_deliveries FINAL WHERE ${where}`).then(Number)
    await waitFor(() => count(`webhook_id = '${ok.conversion_id}:1' AND state = 'delivered'`), (n) => n === 1, 60_000, 'the delivered row')
    await waitFor(() => count(`webhook_id = '${down.conversion_id}:1' AND state = 'failed'`), (n) => n === 1, 60_000, 'the failed row')
    const downRows = await sql(
      `SELECT attempt, state, status_code, error, publisher_id, campaign_id, method, url FROM ${database}.postback_deliveries FINAL
       WHERE conversion_id = '${down.conversion_id}' ORDER BY attempt`,
    )
    const lines = downRows.trim().split('\n').map((l) => l.split('\t'))
    expect(lines.length).toBeGreaterThanOrEqual(2)
    expect(lines.slice(0, -1).every((l) => l[1] === 'retrying' && l[2] === '503')).toBe(true)
    expect(lines.at(-1)!.slice(1, 7)).toEqual(['failed', '503', 'HTTP 503', 'pub-down', 'summer', 'GET'])
    expect(lines.at(-1)![7]).toBe(`${rx.origin}/down?c=${down.click_id}`)

    const cli = (...args: string[]) =>
      run(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', '--clickhouse', `http://127.0.0.1:${sqlPort}`, '--database', database, '--dispatcher', dispatcherUrl, ...args], {
        cwd: repoRoot,
        env: { ...process.env, ADMIN_TOKEN: 'dev-admin-token' },
      }).then((r) => r.stdout)
    const failed = await cli('deliveries', '--state', 'failed')
    expect(failed).toContain(`${down.conversion_id}:1`)
    expect(failed).not.toContain(`${ok.conversion_id}:1`)
    expect(await cli('deliveries', '--publisher', 'pub-ok')).toContain(`${ok.conversion_id}:1`)
    expect(await cli('deliveries', '--conversion', down.conversion_id, '--attempts')).toContain('retrying')

    // The receiver is fixed; the operator redelivers the failed ones.
    broken = false
    const callsBefore = rx.calls.length
    expect(await cli('redeliver', '--publisher', 'pub-down')).toContain('1 deliveries due again')
    await waitFor(() => rx.calls.length, (n) => n === callsBefore + 1, 20_000, 'the redelivered call')
    expect(rx.calls.at(-1)!.headers['webhook-id']).toBe(`${down.conversion_id}:1`)
    await waitFor(() => cli('deliveries', '--state', 'delivered', '--publisher', 'pub-down'), (out) => out.includes(`${down.conversion_id}:1`), 60_000, 'the redelivered row')
  })
})
