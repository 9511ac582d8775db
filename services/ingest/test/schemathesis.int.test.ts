import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { cacheDir } from '@clickjoin/local-stack'
import { tempDir } from '@clickjoin/local-stack/testing'
import { ADMIN_TOKEN, putCampaign, putPartner, startTestIngest } from './harness.ts'

/**
 * schemathesis (installed by `npm test` into .cache/python, see packages/local-stack/src/install.ts)
 * generates requests from /docs/openapi.json with the admin token and every check on: no input
 * may give a 5xx, and every answer must be one the document describes (SPEC §4). The ingest runs
 * on this test's own Redis key prefix and topics (harness.ts), so generated admin writes never
 * touch real campaigns. Bounded by examples per operation and a fixed seed.
 */
const MAX_EXAMPLES = Number(process.env['SCHEMATHESIS_MAX_EXAMPLES'] ?? 50)
let svc: Awaited<ReturnType<typeof startTestIngest>>

beforeAll(async () => {
  svc = await startTestIngest()
  await putCampaign(svc, 'demo', { destination: 'https://shop.example/?cid={click_id}', status: 'active', pixel_enabled: true })
  await putPartner(svc, 'demo', { secret: 'demo-secret-123' })
})
afterAll(async () => {
  await svc?.stop()
})

interface RunReport {
  operations: number
  cases: number
  failures: Array<{ check: string; title: string; operation: string }>
}

async function readReport(ndjsonPath: string): Promise<RunReport> {
  const report: RunReport = { operations: 0, cases: 0, failures: [] }
  for (const line of (await readFile(ndjsonPath, 'utf8')).split('\n').filter(Boolean)) {
    const event = JSON.parse(line) as Record<string, Record<string, unknown>>
    const scenario = event['ScenarioFinished']
    if (!scenario) continue
    const recorder = scenario['recorder'] as { label?: string; cases?: Record<string, unknown>; checks?: Record<string, Array<{ name: string; status: string; failure_info?: { failure?: { title?: string } } }>> }
    report.operations++
    report.cases += Object.keys(recorder.cases ?? {}).length
    for (const checks of Object.values(recorder.checks ?? {})) {
      for (const check of checks) {
        if (check.status === 'failure') report.failures.push({ check: check.name, title: check.failure_info?.failure?.title ?? '', operation: recorder.label ?? '' })
      }
    }
  }
  return report
}

it(`schemathesis: every check on, ${MAX_EXAMPLES} examples per operation and phase: no 5xx, no answer the OpenAPI document does not describe`, async () => {
  const schemathesis = path.join(cacheDir, 'python', 'bin', 'schemathesis')
  expect(existsSync(schemathesis), `${schemathesis}: run scripts/run.sh install`).toBe(true)
  const reports = await tempDir('schemathesis')
  const ndjson = path.join(reports, 'events.ndjson')
  const base = svc.url()
  // A request too large for Node's parser is refused with 431 before any route: a refusal like 400.
  const config = path.join(reports, 'schemathesis.toml')
  await writeFile(
    config,
    '[checks.negative_data_rejection]\nexpected-statuses = [400, 401, 403, 404, 405, 406, 409, 415, 422, 428, 429, 431, "5xx"]\n',
  )
  const result = await promisify(execFile)(
    schemathesis,
    [
      '--config-file',
      config,
      'run',
      `${base}/docs/openapi.json`,
      '--url',
      base,
      '--checks',
      'all',
      '--header',
      `Authorization: Bearer ${ADMIN_TOKEN}`,
      '--max-examples',
      String(MAX_EXAMPLES),
      '--seed',
      '20261126',
      '--workers',
      '2',
      '--max-redirects',
      '0',
      '--no-color',
      '--generation-database',
      'none',
      '--report',
      'ndjson',
      '--report-ndjson-path',
      ndjson,
    ],
    // Its working directory is the temporary one: schemathesis keeps a cache (.schemathesis) there.
    { cwd: reports, timeout: 540_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, SCHEMATHESIS_HOOKS: '' } },
  ).catch((err: { stdout?: string; stderr?: string; code?: number }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '', code: err.code }))
  const report = await readReport(ndjson)
  console.log(`schemathesis: ${report.operations} operations, ${report.cases} generated cases, ${report.failures.length} failed checks`)
  console.log(result.stdout.trim().split('\n').slice(-12).join('\n'))
  expect(report.failures, result.stdout).toEqual([])
  expect(report.cases).toBeGreaterThanOrEqual(2_000)
})
