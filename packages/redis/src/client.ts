import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { parseClusterNodes, type ClusterNodeAddress } from './nodes.ts'

/** Either client: they share the command API (keys of one command, script or MULTI share a slot). */
export type RedisClient = Redis | Cluster

/** Per-connection options we pass through (per node in a cluster). */
export type RedisConnectionOptions = Omit<
  RedisOptions,
  'host' | 'port' | 'path' | 'sentinels' | 'retryStrategy' | 'enableOfflineQueue' | 'readOnly' | 'keyPrefix' | 'lazyConnect'
>

export interface RedisClientOptions {
  /** REDIS_URL: one Redis, `redis://[[user]:password@]host:port[/db]`. */
  url?: string | undefined
  /**
   * REDIS_CLUSTER_NODES (`host:port,…`, or already parsed): a Redis Cluster. When given it
   * wins over `url`: every service switches to cluster mode on this one variable.
   */
  clusterNodes?: string | readonly ClusterNodeAddress[] | undefined
  /**
   * Prepended by ioredis to every key argument, script KEYS included; not to pub/sub channels,
   * nor to keys a Lua script builds itself. Hash tags inside the rest of the key still decide
   * the slot (the prefix is hashed too when the key has no tag).
   */
  keyPrefix?: string | undefined
  /** CLIENT SETNAME on every connection, to tell services apart in CLIENT LIST. */
  connectionName?: string | undefined
  /** A command without a reply in this time fails instead of hanging. */
  commandTimeoutMs?: number | undefined
  /** Commands issued in the same event-loop turn go out as one pipeline (one per node). */
  enableAutoPipelining?: boolean | undefined
  /** Connect only on `connect()` / `waitReady()`. */
  lazyConnect?: boolean | undefined
  /** Cluster: the password of every node (a single Redis reads it from `url`). */
  username?: string | undefined
  password?: string | undefined
  /** Anything else ioredis takes per connection (TLS, timeouts, maxRetriesPerRequest…). */
  connection?: RedisConnectionOptions | undefined
  /** Cluster-only ioredis options (slotsRefreshInterval, retry delays…). */
  cluster?: Omit<ClusterOptions, 'redisOptions' | 'keyPrefix' | 'lazyConnect' | 'enableAutoPipelining'> | undefined
}

/** What the environment says about Redis: the two variables every service reads. */
export function redisTargetFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<RedisClientOptions, 'url' | 'clusterNodes'> {
  const clusterNodes = env['REDIS_CLUSTER_NODES']?.trim()
  const url = env['REDIS_URL']?.trim()
  return {
    ...(clusterNodes ? { clusterNodes: parseClusterNodes(clusterNodes) } : {}),
    ...(url ? { url } : {}),
  }
}

/**
 * One Redis or a Redis Cluster behind the same ioredis command API. With `clusterNodes` the
 * result is an ioredis `Cluster` (slots discovered from any node, MOVED/ASK followed, reads on
 * primaries so a read after a write sees it); otherwise a `Redis` on `url`.
 */
export function createRedisClient(options: RedisClientOptions): RedisClient {
  const connection: RedisOptions = { ...options.connection }
  if (options.connectionName !== undefined) connection.connectionName = options.connectionName
  if (options.commandTimeoutMs !== undefined) connection.commandTimeout = options.commandTimeoutMs
  if (options.username !== undefined) connection.username = options.username
  if (options.password !== undefined) connection.password = options.password

  const common: { keyPrefix?: string; lazyConnect?: boolean; enableAutoPipelining?: boolean } = {}
  if (options.keyPrefix !== undefined) common.keyPrefix = options.keyPrefix
  if (options.lazyConnect !== undefined) common.lazyConnect = options.lazyConnect
  if (options.enableAutoPipelining !== undefined) common.enableAutoPipelining = options.enableAutoPipelining

  if (options.clusterNodes !== undefined) {
    const nodes = typeof options.clusterNodes === 'string' ? parseClusterNodes(options.clusterNodes) : options.clusterNodes
    if (nodes.length === 0) throw new Error('createRedisClient: clusterNodes is empty')
    return new Cluster(
      nodes.map((n) => ({ host: n.host, port: n.port })),
      {
        scaleReads: 'master',
        // Addresses come from CLUSTER SLOTS as the nodes announce them: no DNS re-resolution.
        dnsLookup: (address, callback) => callback(null, address),
        ...options.cluster,
        ...common,
        redisOptions: connection,
      },
    )
  }
  if (options.url === undefined || options.url === '') {
    throw new Error('createRedisClient: set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster)')
  }
  return new Redis(options.url, { ...connection, ...common })
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster
}

/**
 * A second client with the same target and options, for SUBSCRIBE (a subscribed connection can
 * run nothing else) or blocking commands. In a cluster, SUBSCRIBE goes to one node and receives
 * PUBLISHes made on any node (the cluster bus forwards them).
 */
export function duplicateClient(client: RedisClient): RedisClient {
  return isCluster(client) ? client.duplicate() : client.duplicate()
}

/**
 * Resolves once the client can take commands (for a cluster: slots loaded and every node's
 * connection ready). Connects a lazy client. Rejects after `timeoutMs` with the last error,
 * or at once when the client was closed.
 */
export async function waitReady(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return
  if (client.status === 'end' || client.status === 'close') {
    throw new Error(`Redis client is closed (status ${client.status})`)
  }
  let lastError: Error | undefined
  let cleanup = () => undefined as void
  try {
    await new Promise<void>((resolve, reject) => {
      const onReady = () => resolve()
      const onError = (err: Error) => (lastError = err)
      const onEnd = () => reject(new Error(`Redis client closed before it was ready${lastError ? `: ${lastError.message}` : ''}`))
      const timer = setTimeout(
        () => reject(new Error(`Redis not ready within ${timeoutMs} ms${lastError ? `: ${lastError.message}` : ''}`)),
        timeoutMs,
      )
      client.once('ready', onReady)
      client.on('error', onError)
      client.once('end', onEnd)
      cleanup = () => {
        clearTimeout(timer)
        client.off('ready', onReady)
        client.off('error', onError)
        client.off('end', onEnd)
      }
      if (client.status === 'wait') client.connect().catch((err: unknown) => (lastError = err instanceof Error ? err : new Error(String(err))))
    })
  } finally {
    cleanup()
  }
}

/**
 * The primaries behind a client: itself for one Redis, every master node of a cluster. For
 * per-node commands that a cluster does not route by key: SCAN, INFO memory, DBSIZE, FLUSHDB.
 */
export function primaries(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client]
}

/** `used_memory` summed over the primaries, in bytes. */
export async function usedMemory(client: RedisClient): Promise<number> {
  let total = 0
  for (const node of primaries(client)) {
    const info = await node.info('memory')
    const match = /^used_memory:(\d+)\r?$/m.exec(info)
    if (!match) throw new Error('INFO memory has no used_memory')
    total += Number(match[1])
  }
  return total
}

/** Every key matching `pattern` on every primary (SCAN, never KEYS). For tests and tools. */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  return (await scanKeyBuffers(client, pattern)).map((key) => key.toString())
}

/** scanKeys for binary key names, as the bytes they are. */
export async function scanKeyBuffers(client: RedisClient, pattern: string): Promise<Buffer[]> {
  const keys: Buffer[] = []
  for (const node of primaries(client)) {
    let cursor = '0'
    do {
      const [next, batch] = await node.scanBuffer(cursor, 'MATCH', pattern, 'COUNT', 1000)
      cursor = next.toString()
      keys.push(...batch)
    } while (cursor !== '0')
  }
  return keys
}
