import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { startProcess, waitUntilReady, type ManagedProcess } from './child-process.ts'
import { repoRoot } from './paths.ts'
import { freePort } from './ports.ts'

export interface ServiceSpec {
  name: 'ingest' | 'attributor' | 'sink' | 'dispatcher'
  port: number
}

export interface RunningService {
  name: string
  port: number
  /** The current process; a supervised service gets a new one after each restart. */
  process: ManagedProcess
  /** From its spawn to its first `/readyz` 200 (the latest start's). */
  readyAfterMs: number
}

/** Starting order: downstream first, so the edge takes traffic only when the rest is ready. */
export const serviceOrder: ServiceSpec['name'][] = ['sink', 'attributor', 'dispatcher', 'ingest']

export function serviceEntry(name: string): string {
  return path.join(repoRoot, 'services', name, 'src', 'server.ts')
}

export interface StartServiceOptions {
  env: NodeJS.ProcessEnv
  logDir: string
  readyTimeoutMs?: number
  /** Node options before the entry (e.g. `--cpu-prof` for a benchmark). */
  nodeArgs?: readonly string[]
}

/**
 * Runs one service as a child process (`node --import tsx services/<name>/src/server.ts`),
 * its output prefixed on our stdout and kept in `<logDir>/<name>.log`, and waits until its
 * `/readyz` answers 200. The child gets our PID in `CLICKJOIN_PARENT_PID` and shuts itself
 * down when we are gone, even after a `kill -9` of us.
 */
export async function startService(spec: ServiceSpec, options: StartServiceOptions): Promise<RunningService> {
  await mkdir(options.logDir, { recursive: true })
  const logFile = path.join(options.logDir, `${spec.name}.log`)
  const proc = startProcess(spec.name, process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', serviceEntry(spec.name)], {
    cwd: repoRoot,
    env: { ...options.env, PORT: String(spec.port), CLICKJOIN_PARENT_PID: String(process.pid) },
    logFile,
    echoPrefix: `[${spec.name}] `.padEnd(13),
  })
  const spawnedAt = performance.now()
  const timeoutMs = options.readyTimeoutMs ?? 120_000
  let lastAnswer = 'no answer yet'
  try {
    await waitUntilReady(
      proc,
      async () => {
        const res = await fetch(`http://127.0.0.1:${spec.port}/readyz`)
        lastAnswer = `${res.status} ${(await res.text()).slice(0, 500)}`
        return res.status === 200
      },
      timeoutMs,
      `/readyz on port ${spec.port}`,
    )
  } catch (err) {
    await proc.stop(10_000)
    const why = proc.isRunning() ? '' : ` (${err instanceof Error ? err.message : String(err)})`
    throw new Error(
      `${spec.name} did not become ready within ${Math.round(timeoutMs / 1000)} s${why}; ` +
        `last /readyz answer: ${lastAnswer}; its log: ${logFile}`,
      { cause: err },
    )
  }
  return { name: spec.name, port: spec.port, process: proc, readyAfterMs: performance.now() - spawnedAt }
}

export interface SuperviseOptions {
  log: (line: string) => void
  /** After each restart, with the new process (e.g. to update a PID file). */
  onRestart?: (service: RunningService) => void
  /** First pause before a restart; doubles per quick death up to 30 s. */
  initialBackoffMs?: number
}

/**
 * Restarts a service whose process ends while we did not stop it, with backoff (1 s doubling
 * to 30 s, back to 1 s once it ran for a minute), each restart logged. Returns the stop that
 * ends the supervision and the service.
 */
function supervise(service: RunningService, start: () => Promise<RunningService>, options: SuperviseOptions): () => Promise<void> {
  let stopping = false
  let backoffMs = options.initialBackoffMs ?? 1_000
  let timer: NodeJS.Timeout | undefined
  let restarting: Promise<void> | undefined

  const scheduleRestart = (reason: string, ranMs: number) => {
    if (stopping) return
    if (ranMs > 60_000) backoffMs = options.initialBackoffMs ?? 1_000
    const delay = backoffMs
    backoffMs = Math.min(30_000, backoffMs * 2)
    options.log(`${service.name} ${reason}; restarting in ${(delay / 1000).toFixed(1)} s`)
    timer = setTimeout(() => {
      timer = undefined
      restarting = (async () => {
        if (stopping) return
        try {
          const next = await start()
          service.process = next.process
          service.readyAfterMs = next.readyAfterMs
          if (stopping) return
          options.log(`${service.name} restarted (pid ${next.process.pid})`)
          options.onRestart?.(service)
          watch(next.process)
        } catch (err) {
          // startService has stopped the process that did not get ready.
          scheduleRestart(`restart failed: ${err instanceof Error ? err.message : String(err)}`, 0)
        }
      })()
    }, delay)
  }
  const watch = (proc: ManagedProcess) => {
    const startedAt = Date.now()
    void proc.exited.then((code) => scheduleRestart(`exited (${code})`, Date.now() - startedAt))
  }
  watch(service.process)
  return async () => {
    stopping = true
    if (timer) clearTimeout(timer)
    await restarting
    await service.process.stop(60_000)
  }
}

export interface Pipeline {
  ingestUrl: string
  /** ClickHouse's HTTP interface: the server's URL, or the sink's embedded endpoint. */
  sqlUrl: string
  services: RunningService[]
  /** The environment the services were started with. */
  env: NodeJS.ProcessEnv
  /** Edge first, so nothing new arrives while the rest drains. */
  stop(): Promise<void>
}

/**
 * The services as separate processes against a running stack, in starting order, each
 * ready before the next starts. `env` adds to or overrides the stack's endpoints (topic
 * prefix, key prefix, secrets, ports...). With `supervise`, a service that dies is restarted.
 * A service without a port in `ports` (the dispatcher, for callers that do not talk to it)
 * gets a free one.
 */
export async function startPipeline(options: {
  env: NodeJS.ProcessEnv
  logDir: string
  ports: Record<Exclude<ServiceSpec['name'], 'dispatcher'>, number> & { dispatcher?: number; clickhouseHttp: number }
  supervise?: SuperviseOptions
  readyTimeoutMs?: number
  /** Node options of some services (e.g. `--cpu-prof` for a benchmark). */
  nodeArgs?: Partial<Record<ServiceSpec['name'], readonly string[]>>
}): Promise<Pipeline> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, CLICKHOUSE_HTTP_PORT: String(options.ports.clickhouseHttp) }
  const services: RunningService[] = []
  const stops: Array<() => Promise<void>> = []
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s()
    services.length = 0
  }
  try {
    for (const name of serviceOrder) {
      const spec = { name, port: options.ports[name] ?? (await freePort()) }
      const start = () =>
        startService(spec, {
          env,
          logDir: options.logDir,
          ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
          ...(options.nodeArgs?.[name] ? { nodeArgs: options.nodeArgs[name] } : {}),
        })
      const service = await start()
      services.push(service)
      stops.push(options.supervise ? supervise(service, start, options.supervise) : () => service.process.stop(60_000))
    }
  } catch (err) {
    await stop()
    throw err
  }
  return {
    ingestUrl: `http://127.0.0.1:${options.ports.ingest}`,
    sqlUrl: env['CLICKHOUSE_URL'] || `http://127.0.0.1:${options.ports.clickhouseHttp}`,
    services,
    env,
    stop,
  }
}
