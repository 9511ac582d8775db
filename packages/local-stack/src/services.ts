import { existsSync } from 'node:fs'
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

/** Services whose entry exists in this checkout. */
export function availableServices(): ServiceSpec['name'][] {
  return serviceOrder.filter((name) => existsSync(serviceEntry(name)))
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
