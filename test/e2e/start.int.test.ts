import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort, isPortOpen, repoRoot } from '@clickjoin/local-stack'
import { tempDir, waitFor } from '@clickjoin/local-stack/testing'
import { processAlive } from '@clickjoin/service-runtime'

/**
 * `npm start` itself, as a user runs it (its own Kafka, Redis and services on a data dir),
 * killed the hard way: a service killed with -9 comes back (the sink and the dispatcher); `npm start` killed with -9
 * leaves nothing running, and the next start on the same data dir has the earlier rows.
 */
interface Start {
  child: ChildProcess
  output: () => string
  exited: Promise<number | string>
}

let dataDir: string
let env: NodeJS.ProcessEnv
let ports: Record<'kafka' | 'redis' | 'ingest' | 'attributor' | 'sink' | 'dispatcher' | 'sql', number>
const running: Start[] = []

/** Eight distinct free ports; Kafka's controller takes the port after Kafka's. */
async function freePorts() {
  const taken = new Set<number>()
  const next = async (): Promise<number> => {
    for (;;) {
      const port = await freePort()
      if (!taken.has(port)) {
        taken.add(port)
        return port
      }
    }
  }
  let kafka = await next()
  while (taken.has(kafka + 1) || (await isPortOpen(kafka + 1))) kafka = await next()
  taken.add(kafka + 1)
  return {
    kafka,
    redis: await next(),
    ingest: await next(),
    attributor: await next(),
    sink: await next(),
    dispatcher: await next(),
    sql: await next(),
  }
}

function npmStart(): Start {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'packages/local-stack/src/start.ts')], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()))
  // 'close': after the last output, so a failure's message is in hand.
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(signal ?? code ?? -1)))
  const start = { child, output: () => text, exited }
  running.push(start)
  return start
}

async function untilReady(start: Start): Promise<void> {
  let gone: number | string | undefined
  void start.exited.then((code) => (gone = code))
  await waitFor(
    () => (gone !== undefined ? `exited ${gone}` : start.output().includes('running; press Ctrl-C') ? 'ready' : 'starting'),
    (state) => state !== 'starting',
    300_000,
    'npm start to be ready',
  ).then((state) => {
    if (state !== 'ready') throw new Error(`npm start ${state}:\n${start.output().slice(-4000)}`)
  })
}

async function pids(): Promise<number[]> {
  const text = await readFile(path.join(dataDir, 'stack.pids'), 'utf8').catch(() => '')
  return text.split('\n').map(Number).filter((n) => n > 0)
}

async function sql(query: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${ports.sql}/?query=${encodeURIComponent(query)}`)
  return (await res.text()).trim()
}

async function status(port: number, route: string): Promise<number> {
  return fetch(`http://127.0.0.1:${port}${route}`).then(
    (res) => res.status,
    () => 0,
  )
}

afterAll(async () => {
  for (const start of running) if (start.child.exitCode === null && start.child.signalCode === null) start.child.kill('SIGINT')
  await Promise.all(running.map((s) => s.exited))
  for (const pid of await pids()) if (processAlive(pid)) process.kill(pid, 'SIGKILL')
})

describe('npm start', () => {
  it('restarts a service killed with -9, leaves nothing behind when killed with -9 itself, and the next start keeps the rows', async () => {
    dataDir = await tempDir('npm-start')
    ports = await freePorts()
    env = { ...process.env }
    // Its own stack, as on a user's machine: not the test run's Kafka, Redis or ClickHouse.
    for (const name of ['KAFKA_BROKERS', 'REDIS_URL', 'CLICKHOUSE_URL', 'CLICK_ID_KEYS', 'PUBLIC_URL']) delete env[name]
    Object.assign(env, {
      CLICKJOIN_DATA_DIR: dataDir,
      KAFKA_PORT: String(ports.kafka),
      REDIS_PORT: String(ports.redis),
      INGEST_PORT: String(ports.ingest),
      ATTRIBUTOR_PORT: String(ports.attributor),
      SINK_PORT: String(ports.sink),
      DISPATCHER_PORT: String(ports.dispatcher),
      CLICKHOUSE_HTTP_PORT: String(ports.sql),
    })

    const first = npmStart()
    await untilReady(first)
    // Kafka, Redis, then the services in starting order: sink, attributor, dispatcher, ingest.
    const [, , sinkPid, , dispatcherPid] = await pids()
    expect(sinkPid).toBeGreaterThan(0)
    expect(dispatcherPid).toBeGreaterThan(0)
    expect(await status(ports.dispatcher, '/readyz')).toBe(200)
    expect(first.output()).toContain(`dispatcher  http://127.0.0.1:${ports.dispatcher}`)

    // A service killed with -9 is restarted and ready again (the sink and the dispatcher at once).
    const killedAt = Date.now()
    process.kill(sinkPid!, 'SIGKILL')
    process.kill(dispatcherPid!, 'SIGKILL')
    await waitFor(() => first.output().includes('sink restarted'), Boolean, 120_000, 'the sink to be restarted')
    await waitFor(() => status(ports.sink, '/readyz'), (s) => s === 200, 60_000, 'the restarted sink to be ready')
    console.log(`[npm start] sink killed with -9 was ready again after ${Date.now() - killedAt} ms`)
    await waitFor(() => first.output().includes('dispatcher restarted'), Boolean, 120_000, 'the dispatcher to be restarted')
    await waitFor(() => status(ports.dispatcher, '/readyz'), (s) => s === 200, 60_000, 'the restarted dispatcher to be ready')
    console.log(`[npm start] dispatcher killed with -9 was ready again after ${Date.now() - killedAt} ms`)
    const restarted = await pids()
    expect(restarted[2]).not.toBe(sinkPid)
    expect(restarted[4]).not.toBe(dispatcherPid)

    // A click lands in ClickHouse; its tracking link points at the ingest's own port.
    const click = await fetch(`http://127.0.0.1:${ports.ingest}/c/demo?pub=start-test`, { headers: { accept: 'application/json' } })
    expect(click.status).toBe(200)
    const clickId = ((await click.json()) as { click_id: string }).click_id
    const countClick = () => sql(`SELECT count() FROM clickjoin.clicks WHERE click_id = '${clickId}'`)
    await waitFor(countClick, (n) => n === '1', 60_000, 'the click in ClickHouse')
    const link = await fetch(`http://127.0.0.1:${ports.ingest}/admin/campaigns/demo/link?pub=p`, {
      headers: { authorization: 'Bearer dev-admin-token' },
    })
    expect(link.status).toBe(200)
    expect(await link.json()).toEqual({ url: `http://127.0.0.1:${ports.ingest}/c/demo?pub=p` })

    // kill -9 of npm start itself: every process it started goes away by itself.
    const started = await pids()
    expect(started.length).toBe(6) // Kafka, Redis, sink, attributor, dispatcher, ingest
    first.child.kill('SIGKILL')
    await first.exited
    await waitFor(() => started.filter(processAlive), (left) => left.length === 0, 90_000, 'every process of the killed npm start to end')

    // The next start on the same data dir becomes ready and still has the click.
    const second = npmStart()
    await untilReady(second)
    expect(await countClick()).toBe('1')
    expect(second.output()).not.toContain('seeded campaigns/demo') // the demo was there already

    second.child.kill('SIGINT')
    expect(await second.exited).toBe(0)
    expect((await pids()).filter(processAlive)).toEqual([])
    for (const pid of started) expect(processAlive(pid)).toBe(false)
  }, 900_000)
})
