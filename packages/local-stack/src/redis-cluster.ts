import { execFile } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { startProcess, waitUntilReady, type ManagedProcess } from './child-process.ts'
import { freePort, isPortOpen, reservePort } from './ports.ts'
import { ensureRedisServer, redisServerArgs } from './redis.ts'

const run = promisify(execFile)

export interface RedisClusterOptions {
  /** Each node gets `<dataDir>/node-<port>` for its AOF and nodes.conf. */
  dataDir: string
  /** 3 is the smallest cluster `redis-cli --cluster create` accepts without replicas. */
  primaries?: number
  /** Fixed ports, one per primary; omitted: free ones. */
  ports?: number[]
  appendfsync?: 'always' | 'everysec'
  log?: (line: string) => void
}

export interface RedisCluster {
  /** `127.0.0.1:port` of every primary: the value of REDIS_CLUSTER_NODES. */
  nodes: string[]
  /** `redis://` URL of the first node, for code that is not cluster-aware yet. */
  url: string
  processes: ManagedProcess[]
  stop(): Promise<void>
}

/**
 * A Redis Cluster of `primaries` redis-server processes on 127.0.0.1 (no replicas), each with
 * AOF `always` and `noeviction` like the single server, joined by `redis-cli --cluster create`.
 * Resolves once every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(options: RedisClusterOptions): Promise<RedisCluster> {
  const log = options.log ?? (() => undefined)
  const primaries = options.primaries ?? 3
  if (primaries < 3) throw new Error(`a Redis Cluster needs at least 3 primaries (asked for ${primaries})`)
  if (options.ports && options.ports.length !== primaries) {
    throw new Error(`a Redis Cluster of ${primaries} primaries needs ${primaries} ports, got ${options.ports.length}`)
  }
  const binary = await ensureRedisServer(log)
  const cli = path.join(path.dirname(binary), 'redis-cli')
  const ports = await clusterPorts(options.ports, primaries)

  const processes: ManagedProcess[] = []
  const stop = async () => {
    // All at once: a cluster has no start order, and a stopped node is not waited on by others.
    await Promise.all(processes.map((p) => p.stop(15_000)))
    processes.length = 0
  }

  try {
    for (const port of ports) {
      const dir = path.join(options.dataDir, `node-${port}`)
      await mkdir(dir, { recursive: true })
      const args = redisServerArgs(port, dir, options.appendfsync, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '5000',
      ])
      processes.push(startProcess(`redis-cluster-${port}`, binary, args, { logFile: path.join(dir, 'redis.log') }))
    }
    await Promise.all(
      processes.map((proc, i) => waitUntilReady(proc, () => answersPing(ports[i] ?? 0), 30_000, `Redis cluster node answering on port ${ports[i]}`)),
    )

    const nodes = ports.map((port) => `127.0.0.1:${port}`)
    // A restart over the same data dir finds the cluster already formed (nodes.conf): its
    // nodes only need a moment to find each other again.
    if ((await slotsAssigned(ports[0] ?? 0)) === 0) {
      await run(cli, ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { maxBuffer: 16 * 1024 * 1024 }).catch(
        (err: unknown) => {
          const { stdout, stderr } = err as { stdout?: string; stderr?: string }
          throw new Error(`redis-cli --cluster create failed: ${stderr || stdout || String(err)}`)
        },
      )
    }
    // Every node must agree, not only the one that ran the create: clients may ask any of them.
    await Promise.all(
      processes.map((proc, i) => waitUntilReady(proc, () => clusterOk(ports[i] ?? 0), 30_000, `cluster_state:ok on port ${ports[i]}`)),
    )
    log(`Redis Cluster ready on ${nodes.join(',')} (pids ${processes.map((p) => p.pid).join(',')})`)
    return { nodes, url: `redis://${nodes[0]}`, processes: [...processes], stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function clusterPorts(wanted: number[] | undefined, count: number): Promise<number[]> {
  if (wanted) {
    for (const port of wanted) {
      if (await isPortOpen(port)) throw new Error(`Redis Cluster: port ${port} is already in use`)
    }
    return wanted
  }
  const ports = new Set<number>()
  // Each node also listens on port + 10000 for the cluster bus: both must be free.
  while (ports.size < count) {
    const port = await freePort()
    if (port + 10_000 <= 65_535 && !ports.has(port) && !(await isPortOpen(port + 10_000)) && reservePort(port + 10_000)) ports.add(port)
  }
  return [...ports]
}

async function withNode<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => undefined) // refused until the node listens: the probe just retries
  try {
    await client.connect()
    return await use(client)
  } finally {
    client.disconnect()
  }
}

const answersPing = (port: number) => withNode(port, async (c) => (await c.ping()) === 'PONG')

const clusterInfo = (port: number) => withNode(port, async (c) => String(await c.call('CLUSTER', 'INFO')))

const clusterOk = async (port: number) => /^cluster_state:ok\r?$/m.test(await clusterInfo(port))

const slotsAssigned = async (port: number) => Number(/^cluster_slots_assigned:(\d+)/m.exec(await clusterInfo(port))?.[1] ?? 0)

/**
 * For a test file that must run against a cluster: the one the integration run started
 * (REDIS_CLUSTER_NODES when it is the run's Redis, else CLICKJOIN_TEST_REDIS_CLUSTER_NODES),
 * else — outside the integration run — one of its own under `dataDir`, stopped by `release()`.
 * Tests share it as they share the Redis: by unique key prefixes.
 */
export async function acquireTestRedisCluster(dataDir: string): Promise<{ nodes: string[]; release(): Promise<void> }> {
  const fromEnv = process.env['REDIS_CLUSTER_NODES'] || process.env['CLICKJOIN_TEST_REDIS_CLUSTER_NODES']
  if (fromEnv) return { nodes: fromEnv.split(',').map((n) => n.trim()).filter(Boolean), release: async () => undefined }
  const cluster = await startRedisCluster({ dataDir })
  return { nodes: cluster.nodes, release: cluster.stop }
}
