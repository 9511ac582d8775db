import { existsSync } from 'node:fs'

/**
 * Testcontainers, used instead of local processes where a Docker engine answers.
 * Images are pinned to the versions the local processes run.
 * NOTE: no Docker engine exists on the project's CI machines, so this path is exercised only
 * where Docker is available (see docs/local-stack.md).
 */
export const containerImages = {
  kafka: 'confluentinc/cp-kafka:7.9.1', // Apache Kafka 3.9 in KRaft mode
  redis: 'redis:7.2',
  clickhouse: 'clickhouse/clickhouse-server:25.8',
} as const

export interface RunningContainer {
  endpoint: string
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

export async function startKafkaContainer(): Promise<RunningContainer> {
  const { KafkaContainer } = await import('@testcontainers/kafka')
  const container = await new KafkaContainer(containerImages.kafka)
    .withKraft()
    .withEnvironment({ KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false', KAFKA_NUM_PARTITIONS: '4' })
    .start()
  return {
    endpoint: `${container.getHost()}:${container.getMappedPort(9093)}`,
    stop: async () => void (await container.stop()),
  }
}

export async function startRedisContainer(): Promise<RunningContainer> {
  const { RedisContainer } = await import('@testcontainers/redis')
  const container = await new RedisContainer(containerImages.redis)
    .withCommand(['redis-server', '--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction'])
    .start()
  return { endpoint: container.getConnectionUrl(), stop: async () => void (await container.stop()) }
}

export async function startClickHouseContainer(): Promise<RunningContainer> {
  const { GenericContainer, Wait } = await import('testcontainers')
  const container = await new GenericContainer(containerImages.clickhouse)
    .withExposedPorts(8123)
    .withEnvironment({ CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: 'clickjoin', CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1' })
    .withWaitStrategy(Wait.forHttp('/ping', 8123).forStatusCode(200))
    .start()
  return {
    endpoint: `http://default:clickjoin@${container.getHost()}:${container.getMappedPort(8123)}`,
    stop: async () => void (await container.stop()),
  }
}
