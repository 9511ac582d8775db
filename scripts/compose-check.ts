/**
 * The Docker Compose check of .ci/run: `docker compose up` with the given files, the whole
 * pipeline healthy, the demo campaign and partner seeded, a demo click and its postback → the
 * conversion row read back over ClickHouse's SQL endpoint, then `docker compose down`, after
 * which no container, network or volume of the project may remain. Host ports are free ones on
 * 127.0.0.1 and the project name is unique, so it runs beside anything else on the machine.
 *
 *   node --import tsx scripts/compose-check.ts [-f docker-compose.yml -f docker-compose.local.yml]
 *
 * Uses `docker compose` when the plugin answers, else Debian's `docker-compose`.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { waitFor } from '@clickjoin/local-stack/testing'
import { freePort } from '../packages/local-stack/src/ports.ts'

const run = promisify(execFile)
const log = (line: string) => console.log(`[compose-check] ${line}`)
const started = Date.now()
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`

const argv = process.argv.slice(2)
const files = argv.length > 0 ? argv : ['-f', 'docker-compose.yml', '-f', 'docker-compose.local.yml']
const project = `clickjoin-check-${randomBytes(3).toString('hex')}`
const services = ['kafka', 'redis', 'sink', 'attributor', 'dispatcher', 'ingest']
const adminToken = `check-${randomBytes(12).toString('hex')}`

const ports = {
  INGEST_PORT: await freePort(),
  ATTRIBUTOR_PORT: await freePort(),
  SINK_PORT: await freePort(),
  DISPATCHER_PORT: await freePort(),
  CLICKHOUSE_HTTP_PORT: await freePort(),
}
const env: NodeJS.ProcessEnv = {
  ...process.env,
  ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
  ADMIN_TOKEN: adminToken,
  DOCKER_BUILDKIT: '0', // dockerd 20.10 without buildx: the classic builder, without its warning
}

async function composeCommand(): Promise<string[]> {
  try {
    await run('docker', ['compose', 'version'], { env })
    return ['docker', 'compose']
  } catch {
    return ['docker-compose']
  }
}
const [composeBin, ...composeArgs] = await composeCommand()

async function compose(...args: string[]): Promise<string> {
  const { stdout } = await run(composeBin!, [...composeArgs, '-p', project, ...files, ...args], { env, maxBuffer: 64 * 1024 * 1024 })
  return stdout
}

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { env, maxBuffer: 16 * 1024 * 1024 })
  return stdout.trim()
}

/** Health of each container of the project, by service: healthy, starting, unhealthy, exited... */
async function healthByService(): Promise<Record<string, string>> {
  const ids = (await docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`)).split('\n').filter(Boolean)
  const states: Record<string, string> = {}
  for (const id of ids) {
    const [service, state] = (
      await docker('inspect', '--format', '{{ index .Config.Labels "com.docker.compose.service" }} {{ if .State.Health }}{{ .State.Health.Status }}{{ else }}{{ .State.Status }}{{ end }}', id)
    ).split(' ')
    states[service!] = state!
  }
  return states
}

async function leftovers(): Promise<string[]> {
  const filter = `label=com.docker.compose.project=${project}`
  return [
    ...(await docker('ps', '-aq', '--filter', filter)).split('\n').filter(Boolean).map((id) => `container ${id}`),
    ...(await docker('network', 'ls', '-q', '--filter', filter)).split('\n').filter(Boolean).map((id) => `network ${id}`),
    ...(await docker('volume', 'ls', '-q', '--filter', filter)).split('\n').filter(Boolean).map((id) => `volume ${id}`),
  ]
}

async function http(method: string, url: string, body?: object): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', accept: 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
  return { status: res.status, text: await res.text() }
}

async function expectStatus(what: string, answer: Promise<{ status: number; text: string }>, status: number): Promise<string> {
  const a = await answer
  if (a.status !== status) throw new Error(`${what}: expected ${status}, got ${a.status} ${a.text.slice(0, 300)}`)
  return a.text
}

let failed = false
try {
  log(`${[composeBin, ...composeArgs, ...files].join(' ')} as project ${project}; ports ${JSON.stringify(ports)}`)
  let t = Date.now()
  await compose('build')
  log(`images built in ${seconds(t)}`)

  t = Date.now()
  // `up` returns once the dependencies it waits for are healthy; a service that exits during
  // start (and is restarted) can make one `up` give up early, so `up` is repeated until every
  // service is healthy, within a deadline.
  let lastUpError = ''
  const health = await waitFor(
    async () => {
      const states = await healthByService()
      if (services.some((s) => states[s] !== 'healthy')) {
        await compose('up', '-d').catch((err: unknown) => (lastUpError = String(err).split('\n').slice(-3).join(' ')))
      }
      return healthByService()
    },
    (states) => services.every((s) => states[s] === 'healthy'),
    300_000,
    'every service healthy',
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}; last \`up\` error: ${lastUpError}`)
  })
  log(`pipeline healthy in ${seconds(t)}: ${JSON.stringify(health)}`)

  t = Date.now()
  const ingest = `http://127.0.0.1:${ports.INGEST_PORT}`
  const sql = `http://127.0.0.1:${ports.CLICKHOUSE_HTTP_PORT}`
  await expectStatus('PUT campaign demo', http('PUT', `${ingest}/admin/campaigns/demo`, {
    destination: 'https://shop.example.com/landing?cid={click_id}&pub={pub}&sub1={sub1}',
    status: 'active',
    payout: { type: 'cpa', amount: '2.50' },
    pixel_enabled: true,
  }), 200)
  await expectStatus('PUT partner demo', http('PUT', `${ingest}/admin/partners/demo`, { secret: 'demo-secret' }), 200)
  const click = JSON.parse(await expectStatus('demo click', http('GET', `${ingest}/c/demo?pub=pub1&sub1=compose`), 200)) as { click_id: string }
  const txn = `order-${randomBytes(4).toString('hex')}`
  await expectStatus(
    'postback',
    http('GET', `${ingest}/postback?click_id=${click.click_id}&partner=demo&token=demo-secret&txn_id=${txn}&revenue=12.50`),
    200,
  )
  const query = `SELECT click_id, txn_id, status, revenue, campaign_id FROM clickjoin.conversions FINAL WHERE click_id = '${click.click_id}' FORMAT JSONEachRow`
  const row = await waitFor(
    async () => {
      // The override's SQL user (CLICKHOUSE_HTTP_USERS), as an analyst would connect.
      const res = await fetch(`${sql}/?query=${encodeURIComponent(query)}`, {
        headers: { authorization: `Basic ${Buffer.from('clickjoin:clickjoin').toString('base64')}` },
      }).catch(() => undefined)
      return res?.ok ? (await res.text()).trim() : ''
    },
    (text) => text !== '',
    60_000,
    `the conversion of click ${click.click_id} in ClickHouse`,
  )
  const conversion = JSON.parse(row) as Record<string, unknown>
  if (conversion['txn_id'] !== txn || conversion['status'] !== 'approved' || Number(conversion['revenue']) !== 12.5 || conversion['campaign_id'] !== 'demo') {
    throw new Error(`unexpected conversion row: ${row}`)
  }
  log(`demo click ${click.click_id} → conversion row over SQL in ${seconds(t)}: ${row}`)
} catch (err) {
  failed = true
  console.error(`[compose-check] FAILED: ${err instanceof Error ? err.message : String(err)}`)
  for (const s of services) {
    const logs = await compose('logs', '--no-color', '--tail', '15', s).catch(() => '')
    if (logs) console.error(logs)
  }
} finally {
  const t = Date.now()
  await compose('down', '--volumes', '--remove-orphans', '--timeout', '30').catch((err: unknown) => {
    failed = true
    console.error(`[compose-check] down failed: ${String(err)}`)
  })
  const left = await leftovers()
  if (left.length > 0) {
    failed = true
    console.error(`[compose-check] FAILED: left after down: ${left.join(', ')}`)
  } else {
    log(`down in ${seconds(t)}: no container, network or volume of ${project} left`)
  }
}
log(`${failed ? 'FAILED' : 'passed'} in ${seconds(started)}`)
process.exit(failed ? 1 : 0)
