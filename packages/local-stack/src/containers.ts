import { existsSync } from 'node:fs'
import { Kafka, logLevel } from 'kafkajs'
import { freePort } from './ports.ts'

/**
 * Testcontainers, used instead of local processes where a Docker engine answers. Kafka and
 * Redis run with the host's network on 127.0.0.1 ports of their own (no published ports, no
 * traffic off the machine), configured as the local processes are.
 */
export type ContainerKind = 'kafka' | 'redis' | 'clickhouse'

/** The official images, pinned to the versions the local processes run. */
export const officialImages: Record<ContainerKind, string> = {
  kafka: 'apache/kafka:3.9.1',
  redis: 'redis:7.2',
  clickhouse: 'clickhouse/clickhouse-server:25.8',
}

/**
 * Stand-ins with the official images' interface, built by `scripts/docker-images.sh` where no
 * registry is reachable (Kafka's jars on Debian's JRE, Debian's redis-server). No ClickHouse
 * server is reachable there: its tests use embedded chDB.
 */
export const localImages: Partial<Record<ContainerKind, string>> = {
  kafka: 'clickjoin-local/kafka:3.9.1',
  redis: 'clickjoin-local/redis:7',
}

/** An explicit image always wins: CLICKJOIN_KAFKA_IMAGE, CLICKJOIN_REDIS_IMAGE, CLICKJOIN_CLICKHOUSE_IMAGE. */
export const imageVariables: Record<ContainerKind, string> = {
  kafka: 'CLICKJOIN_KAFKA_IMAGE',
  redis: 'CLICKJOIN_REDIS_IMAGE',
  clickhouse: 'CLICKJOIN_CLICKHOUSE_IMAGE',
}

export interface RunningContainer {
  endpoint: string
  image: string
  stop(): Promise<void>
}

/** True when a Docker engine answers (a socket or DOCKER_HOST, and testcontainers can reach it). */
export async function dockerEngineAvailable(): Promise<boolean> {
  if (!process.env['DOCKER_HOST'] && !existsSync('/var/run/docker.sock')) return false
  try {
    const { getContainerRuntimeClient } = await import('testcontainers')
    await getContainerRuntimeClient()
    return true
  } catch {
    return false
  }
}

/**
 * The image to run for `kind`: the one named in the environment, else the official image if
 * the engine has it, else the local stand-in if the engine has it, else the official image if
 * it can be pulled. Undefined when none can be had (the caller falls back to a local process).
 */
export async function chooseImage(kind: ContainerKind, env: NodeJS.ProcessEnv, log: (line: string) => void): Promise<string | undefined> {
  const { getContainerRuntimeClient, ImageName } = await import('testcontainers')
  const client = await getContainerRuntimeClient()
  const explicit = env[imageVariables[kind]]
  const candidates = explicit ? [explicit] : [officialImages[kind], localImages[kind]].filter((i): i is string => i !== undefined)
  for (const image of candidates) if (await client.image.exists(ImageName.fromString(image))) return image
  const wanted = candidates[0]!
  try {
    await client.image.pull(ImageName.fromString(wanted))
    return wanted
  } catch (err) {
    log(`no ${kind} image: ${candidates.join(', ')} not on the engine, and ${wanted} cannot be pulled (${firstLine(err)})`)
    return undefined
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200)
}

/**
 * Testcontainers' reaper (Ryuk) removes containers a killed test run leaves behind; it is an
 * image of its own. Where the engine does not have it and cannot pull it, the run goes without
 * (our teardown stops every container it started).
 */
let reaperChecked = false
async function ensureReaperOrDisable(log: (line: string) => void): Promise<void> {
  if (reaperChecked || process.env['TESTCONTAINERS_RYUK_DISABLED'] === 'true') return
  reaperChecked = true
  const { getContainerRuntimeClient, ImageName } = await import('testcontainers')
  const { REAPER_IMAGE } = await import('testcontainers/build/reaper/reaper.js')
  const client = await getContainerRuntimeClient()
  const name = ImageName.fromString(REAPER_IMAGE)
  if (await client.image.exists(name)) return
  try {
    await client.image.pull(name)
  } catch {
    log(`${REAPER_IMAGE} not available: running without testcontainers' reaper`)
    process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true'
  }
}

/** KRaft, one combined node, as the local process runs it (see serverProperties in kafka.ts). */
export async function startKafkaContainer(image: string, log: (line: string) => void = () => undefined): Promise<RunningContainer> {
  await ensureReaperOrDisable(log)
  const { GenericContainer, Wait } = await import('testcontainers')
  const port = await freePort()
  const controllerPort = await freePort()
  const container = await new GenericContainer(image)
    .withNetworkMode('host')
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://127.0.0.1:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_INTER_BROKER_LISTENER_NAME: 'PLAINTEXT',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: `1@127.0.0.1:${controllerPort}`,
      KAFKA_LOG_DIRS: '/tmp/kraft-combined-logs',
      KAFKA_NUM_PARTITIONS: '4',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '4',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS: '4',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_MIN_INSYNC_REPLICAS: '1',
      KAFKA_HEAP_OPTS: '-Xms128m -Xmx768m',
    })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start()
  const endpoint = `127.0.0.1:${port}`
  try {
    await kafkaAnswers(endpoint, 60_000)
  } catch (err) {
    await container.stop()
    throw err
  }
  return { endpoint, image, stop: async () => void (await container.stop()) }
}

/** The broker has a controller and lists itself: topics can be created. */
async function kafkaAnswers(broker: string, timeoutMs: number): Promise<void> {
  const admin = new Kafka({ brokers: [broker], clientId: 'local-stack-probe', logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin()
  const deadline = Date.now() + timeoutMs
  try {
    for (;;) {
      try {
        await admin.connect()
        const cluster = await admin.describeCluster()
        if (cluster.brokers.length > 0 && cluster.controller !== null) return
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`Kafka container on ${broker} did not answer within ${timeoutMs} ms: ${firstLine(err)}`)
      }
      if (Date.now() > deadline) throw new Error(`Kafka container on ${broker} has no controller after ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

/** redis-server as the local process runs it: AOF fsync'd always, noeviction, on 127.0.0.1. */
export async function startRedisContainer(image: string, log: (line: string) => void = () => undefined): Promise<RunningContainer> {
  await ensureReaperOrDisable(log)
  const { GenericContainer, Wait } = await import('testcontainers')
  const port = await freePort()
  const container = await new GenericContainer(image)
    .withNetworkMode('host')
    .withCommand([
      'redis-server',
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--appendonly', 'yes',
      '--appendfsync', 'always',
      '--maxmemory-policy', 'noeviction',
      '--save', '',
    ])
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .withStartupTimeout(60_000)
    .start()
  return { endpoint: `redis://127.0.0.1:${port}`, image, stop: async () => void (await container.stop()) }
}

/** NOTE: no ClickHouse server image is reachable on the project's machines; this path is untested there. */
export async function startClickHouseContainer(image: string, log: (line: string) => void = () => undefined): Promise<RunningContainer> {
  await ensureReaperOrDisable(log)
  const { GenericContainer, Wait } = await import('testcontainers')
  const container = await new GenericContainer(image)
    .withExposedPorts(8123)
    .withEnvironment({ CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: 'clickjoin', CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1' })
    .withWaitStrategy(Wait.forHttp('/ping', 8123).forStatusCode(200))
    .start()
  return {
    endpoint: `http://default:clickjoin@${container.getHost()}:${container.getMappedPort(8123)}`,
    image,
    stop: async () => void (await container.stop()),
  }
}
