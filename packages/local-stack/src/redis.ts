import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile, unlink } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { startProcess, waitUntilReady, type ManagedProcess } from './child-process.ts'
import { choosePort } from './ports.ts'

const run = promisify(execFile)

async function which(command: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('sh', ['-c', `command -v ${command}`])
    return stdout.trim() || undefined
  } catch {
    return undefined
  }
}

/**
 * Finds redis-server, installing Debian's package when it is missing and we may (root, apt).
 * The package's own service is kept from starting: we run our own instances.
 */
export async function ensureRedisServer(log: (line: string) => void = () => undefined): Promise<string> {
  const found = await which('redis-server')
  if (found) return found
  const isRoot = process.getuid?.() === 0
  if (!isRoot || !(await which('apt-get'))) {
    throw new Error('redis-server is not installed; install it (Debian: apt-get install redis-server) or set REDIS_URL')
  }
  log('installing redis-server from Debian packages')
  const policy = '/usr/sbin/policy-rc.d'
  const ownPolicy = !existsSync(policy)
  if (ownPolicy) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 })
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 * 1024 * 1024 })
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'], { env, maxBuffer: 64 * 1024 * 1024 })
  } finally {
    if (ownPolicy) await unlink(policy).catch(() => undefined)
  }
  const installed = await which('redis-server')
  if (!installed) throw new Error('apt-get install redis-server did not provide redis-server')
  return installed
}

export interface RedisServerOptions {
  dataDir: string
  /** 0 picks a free port. */
  port: number
  /**
   * `always` makes every acknowledged write survive a crash of Redis itself (group commit per
   * event-loop turn); the attributor's exactly-once argument relies on it.
   */
  appendfsync?: 'always' | 'everysec'
  log?: (line: string) => void
}

export interface RedisServer {
  url: string
  port: number
  process: ManagedProcess
  stop(): Promise<void>
}

/**
 * The command line of every redis-server we start: 127.0.0.1, its own dir, AOF on (fsync as
 * asked, `always` by default), `noeviction`, no RDB snapshots, logs to stdout.
 */
export function redisServerArgs(port: number, dir: string, appendfsync = 'always', extra: readonly string[] = []): string[] {
  return [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    ...extra,
    '--appendonly', 'yes',
    '--appendfsync', appendfsync,
    '--maxmemory-policy', 'noeviction',
    '--save', '',
    '--daemonize', 'no',
    '--logfile', '',
  ]
}

/** redis-server on 127.0.0.1 with its own dir, AOF on and `noeviction`. */
export async function startRedisServer(options: RedisServerOptions): Promise<RedisServer> {
  const log = options.log ?? (() => undefined)
  const binary = await ensureRedisServer(log)
  const port = await choosePort(options.port, 'Redis')
  await mkdir(options.dataDir, { recursive: true })
  const args = redisServerArgs(port, options.dataDir, options.appendfsync)
  const proc = startProcess('redis', binary, args, { logFile: path.join(options.dataDir, 'redis.log') })
  const url = `redis://127.0.0.1:${port}`
  await waitUntilReady(
    proc,
    async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      client.on('error', () => undefined) // refused until the server listens: the probe just retries
      try {
        await client.connect()
        // LOADING while the AOF is replayed: not ready yet.
        return (await client.ping()) === 'PONG'
      } finally {
        client.disconnect()
      }
    },
    30_000,
    `Redis answering on ${url}`,
  )
  log(`Redis ready on ${url} (pid ${proc.pid})`)
  return { url, port, process: proc, stop: () => proc.stop(15_000) }
}
