export { startStack, type RunningStack, type StackOptions, type ServiceSource } from './stack.ts'
export {
  startKafkaBroker,
  startKafkaCluster,
  ensureKafkaJars,
  ensureKafkaTools,
  KAFKA_VERSION,
  type KafkaBroker,
  type KafkaBrokerOptions,
  type KafkaCluster,
} from './kafka.ts'
export { startRedisServer, ensureRedisServer, type RedisServer, type RedisServerOptions } from './redis.ts'
export { startProcess, waitUntilReady, type ManagedProcess } from './child-process.ts'
export { freePort, isPortOpen } from './ports.ts'
export { repoRoot, cacheDir, defaultDataDir } from './paths.ts'
export { startService, startPipeline, serviceEntry, type Pipeline, type RunningService, type ServiceSpec } from './services.ts'
export { startRedisCluster, acquireTestRedisCluster, type RedisCluster, type RedisClusterOptions } from './redis-cluster.ts'
