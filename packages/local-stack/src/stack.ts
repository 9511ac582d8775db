import path from 'node:path'
import { startKafkaBroker } from './kafka.ts'
import { startRedisServer } from './redis.ts'
import { chooseImage, dockerEngineAvailable, type ContainerKind, startClickHouseContainer, startKafkaContainer, startRedisContainer } from './containers.ts'

export type ServiceSource = 'environment' | 'local-process' | 'container' | 'embedded'

export interface StackOptions {
  /** Kafka and Redis data go to `<dataDir>/kafka` and `<dataDir>/redis`. */
  dataDir: string
  /** Fixed ports (npm start) or 0 for free ones (tests). */
  kafkaPort: number
  redisPort: number
  /** Explicit endpoints always win: KAFKA_BROKERS, REDIS_URL, CLICKHOUSE_URL. */
  env?: NodeJS.ProcessEnv
  /** Use testcontainers where a Docker engine answers. Tests: true; npm start: false. */
  preferContainers?: boolean
  log?: (line: string) => void
}

export interface RunningStack {
  kafkaBrokers: string[]
  redisUrl: string
  /** Undefined: ClickHouse is embedded (chDB) in whichever process opens it. */
  clickhouseUrl: string | undefined
  sources: { kafka: ServiceSource; redis: ServiceSource; clickhouse: ServiceSource }
  /** The image of each service that runs in a container. */
  images: { kafka?: string; redis?: string; clickhouse?: string }
  /** Process IDs of the local processes this stack started. */
  pids: number[]
  /** Environment variables that point a service or a test at this stack. */
  env: Record<string, string>
  /** Stops what this stack started, last started first. */
  stop(): Promise<void>
}

/**
 * One real Kafka, Redis and ClickHouse, for `npm start` and for the tests alike. Order of
 * preference for each: an explicit URL from the environment; a container when asked and a
 * Docker engine answers and an image can be had (official, else the local stand-in of
 * scripts/docker-images.sh); else a local process (Kafka jars, redis-server) or embedded chDB.
 */
export async function startStack(options: StackOptions): Promise<RunningStack> {
  const env = options.env ?? process.env
  const log = options.log ?? (() => undefined)
  const stops: Array<() => Promise<void>> = []
  const pids: number[] = []
  const useContainers = options.preferContainers === true && (await dockerEngineAvailable())
  if (useContainers) log('Docker engine found: using testcontainers')
  /** The image a service's container runs, or undefined: no container for it (see chooseImage). */
  const images: RunningStack['images'] = {}
  const containerImage = async (kind: ContainerKind, endpointVariable: string): Promise<string | undefined> => {
    if (!useContainers || env[endpointVariable]) return undefined
    const image = await chooseImage(kind, env, log)
    if (image) images[kind] = image
    return image
  }

  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((err: unknown) => log(`stop failed: ${String(err)}`))
    stops.length = 0
  }

  try {
    const kafkaImage = await containerImage('kafka', 'KAFKA_BROKERS')
    let kafkaBrokers: string[]
    let kafkaSource: ServiceSource
    if (env['KAFKA_BROKERS']) {
      kafkaBrokers = env['KAFKA_BROKERS'].split(',').map((b) => b.trim()).filter(Boolean)
      kafkaSource = 'environment'
    } else if (kafkaImage) {
      const c = await startKafkaContainer(kafkaImage, log)
      stops.push(c.stop)
      kafkaBrokers = [c.endpoint]
      kafkaSource = 'container'
    } else {
      const broker = await startKafkaBroker({ dataDir: path.join(options.dataDir, 'kafka'), port: options.kafkaPort, log })
      stops.push(broker.stop)
      pids.push(broker.process.pid)
      kafkaBrokers = broker.brokers
      kafkaSource = 'local-process'
    }

    const redisImage = await containerImage('redis', 'REDIS_URL')
    let redisUrl: string
    let redisSource: ServiceSource
    if (env['REDIS_URL']) {
      redisUrl = env['REDIS_URL']
      redisSource = 'environment'
    } else if (redisImage) {
      const c = await startRedisContainer(redisImage, log)
      stops.push(c.stop)
      redisUrl = c.endpoint
      redisSource = 'container'
    } else {
      const redis = await startRedisServer({ dataDir: path.join(options.dataDir, 'redis'), port: options.redisPort, log })
      stops.push(redis.stop)
      pids.push(redis.process.pid)
      redisUrl = redis.url
      redisSource = 'local-process'
    }

    const clickhouseImage = await containerImage('clickhouse', 'CLICKHOUSE_URL')
    let clickhouseUrl: string | undefined
    let clickhouseSource: ServiceSource
    if (env['CLICKHOUSE_URL']) {
      clickhouseUrl = env['CLICKHOUSE_URL']
      clickhouseSource = 'environment'
    } else if (clickhouseImage) {
      const c = await startClickHouseContainer(clickhouseImage, log)
      stops.push(c.stop)
      clickhouseUrl = c.endpoint
      clickhouseSource = 'container'
    } else {
      clickhouseUrl = undefined
      clickhouseSource = 'embedded'
    }

    const stackEnv: Record<string, string> = { KAFKA_BROKERS: kafkaBrokers.join(','), REDIS_URL: redisUrl }
    if (clickhouseUrl) stackEnv['CLICKHOUSE_URL'] = clickhouseUrl
    return {
      kafkaBrokers,
      redisUrl,
      clickhouseUrl,
      sources: { kafka: kafkaSource, redis: redisSource, clickhouse: clickhouseSource },
      images,
      pids,
      env: stackEnv,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
