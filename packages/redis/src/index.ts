export {
  createRedisClient,
  duplicateClient,
  isCluster,
  primaries,
  redisTargetFromEnv,
  scanKeyBuffers,
  scanKeys,
  usedMemory,
  waitReady,
  type RedisClient,
  type RedisClientOptions,
  type RedisConnectionOptions,
} from './client.ts'
export { parseClusterNodes, formatClusterNodes, type ClusterNodeAddress } from './nodes.ts'
export { SLOT_COUNT, groupBySlot, hashTag, hashedPart, keySlot } from './slots.ts'
