import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startRedisCluster, type RedisCluster } from './redis-cluster.ts'
import { startStack, type RunningStack } from './stack.ts'

let stack: RunningStack | undefined
let redisCluster: RedisCluster | undefined
let dataDir: string | undefined

/**
 * Starts one Kafka and one Redis (or Redis Cluster) for the whole integration run and hands their endpoints to
 * the test workers through the environment (workers are forked after this runs). Tests
 * isolate themselves by unique topic names, key prefixes and databases.
 */
export async function setup(): Promise<void> {
  dataDir = await mkdtemp(path.join(tmpdir(), 'clickjoin-test-'))
  const started = Date.now()
  const log = (line: string) => console.log(`[local-stack] ${line}`)
  // Every run also has a 3-primary Redis Cluster, for the suites that run against both kinds
  // of Redis (acquireTestRedisCluster): its nodes are in CLICKJOIN_TEST_REDIS_CLUSTER_NODES,
  // which no service reads. Started next to Kafka, it adds no time to the setup.
  // CLICKJOIN_TEST_REDIS=cluster: that cluster is also the run's Redis. Tests see
  // REDIS_CLUSTER_NODES, and REDIS_URL names one node for code not cluster-aware yet.
  const asStackRedis = process.env['CLICKJOIN_TEST_REDIS'] === 'cluster' && !process.env['REDIS_CLUSTER_NODES']
  // One given (REDIS_CLUSTER_NODES, or the cluster of a run that started this one: test-lanes.ts) is used as it is.
  const givenCluster = process.env['REDIS_CLUSTER_NODES'] || process.env['CLICKJOIN_TEST_REDIS_CLUSTER_NODES']
  const startingCluster = givenCluster
    ? undefined
    : startRedisCluster({ dataDir: path.join(dataDir, 'redis-cluster'), log })
  let env: NodeJS.ProcessEnv = process.env
  if (asStackRedis) {
    redisCluster = await startingCluster
    env = { ...process.env, REDIS_URL: redisCluster!.url }
    process.env['REDIS_CLUSTER_NODES'] = redisCluster!.nodes.join(',')
  }
  try {
    stack = await startStack({
      dataDir,
      env,
      kafkaPort: 0,
      redisPort: 0,
      preferContainers: true,
      log,
    })
    redisCluster ??= await startingCluster
  } catch (err) {
    // Whichever of the two started must not outlive a failed setup.
    await (redisCluster ?? (await startingCluster?.catch(() => undefined)))?.stop()
    throw err
  }
  Object.assign(process.env, stack.env, { CLICKJOIN_TEST_DATA_DIR: dataDir })
  // Where each came from; a container is named by its image.
  const source = (kind: 'kafka' | 'redis' | 'clickhouse') => {
    const image = stack?.images[kind]
    return image ? `container ${image}` : (stack?.sources[kind] ?? '')
  }
  process.env['CLICKJOIN_TEST_REDIS_CLUSTER_NODES'] = givenCluster || redisCluster!.nodes.join(',')
  const redis = asStackRedis
    ? `cluster ${redisCluster!.nodes.join(',')}`
    : `${stack.redisUrl} (${source('redis')}), cluster ${process.env['CLICKJOIN_TEST_REDIS_CLUSTER_NODES']}`
  console.log(
    `[local-stack] ready in ${Date.now() - started} ms: kafka=${stack.kafkaBrokers.join(',')} (${source('kafka')}), ` +
      `redis=${redis}, clickhouse=${stack.clickhouseUrl ?? 'embedded chDB'} (${source('clickhouse')})`,
  )
}

export async function teardown(): Promise<void> {
  await stack?.stop()
  await redisCluster?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
}
