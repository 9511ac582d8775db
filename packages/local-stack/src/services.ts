import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { startProcess, waitUntilReady, type ManagedProcess } from './child-process.ts'
import { repoRoot } from './paths.ts'

export interface ServiceSpec {
  name: 'ingest' | 'attributor' | 'sink'
  port: number
}

export interface RunningService {
  name: string
  port: number
  process: ManagedProcess
}

/** Starting order: downstream first, so the edge takes traffic only when the rest is ready. */
export const serviceOrder: ServiceSpec['name'][] = ['sink', 'attributor', 'ingest']

export function serviceEntry(name: string): string {
  return path.join(repoRoot, 'services', name, 'src', 'server.ts')
}

/**
 * Runs one service as a child process (`node --import tsx services/<name>/src/server.ts`),
 * its output prefixed on our stdout and kept in `<logDir>/<name>.log`, and waits until its
 * `/readyz` answers 200.
 */
export async function startService(
  spec: ServiceSpec,
  options: { env: NodeJS.ProcessEnv; logDir: string; readyTimeoutMs?: number },
): Promise<RunningService> {
  await mkdir(options.logDir, { recursive: true })
  const proc = startProcess(spec.name, process.execPath, ['--import', 'tsx', serviceEntry(spec.name)], {
    cwd: repoRoot,
    env: { ...options.env, PORT: String(spec.port) },
    logFile: path.join(options.logDir, `${spec.name}.log`),
    echoPrefix: `[${spec.name}] `.padEnd(13),
  })
  try {
    await waitUntilReady(
      proc,
      async () => (await fetch(`http://127.0.0.1:${spec.port}/readyz`)).status === 200,
      options.readyTimeoutMs ?? 120_000,
      `/readyz on port ${spec.port}`,
    )
  } catch (err) {
    await proc.stop(10_000)
    throw err
  }
  return { name: spec.name, port: spec.port, process: proc }
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
 * The three services as separate processes against a running stack, in starting order, each
 * ready before the next starts. `env` adds to or overrides the stack's endpoints (topic
 * prefix, key prefix, secrets, ports...).
 */
export async function startPipeline(options: {
  env: NodeJS.ProcessEnv
  logDir: string
  ports: Record<ServiceSpec['name'], number> & { clickhouseHttp: number }
}): Promise<Pipeline> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, CLICKHOUSE_HTTP_PORT: String(options.ports.clickhouseHttp) }
  const services: RunningService[] = []
  const stop = async () => {
    for (const s of [...services].reverse()) await s.process.stop(60_000)
    services.length = 0
  }
  try {
    for (const name of serviceOrder) {
      services.push(await startService({ name, port: options.ports[name] }, { env, logDir: options.logDir }))
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
