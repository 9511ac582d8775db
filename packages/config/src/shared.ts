import { z } from 'zod'
import { DEVELOPMENT_CLICK_ID_KEYS, parseClickIdKeys } from '@clickjoin/click-id'
import { brokerList, logLevel, nodeEnv, parsedWith, positiveInt, url, type NodeEnv } from './fields.ts'
import { ConfigError, type ConfigProblem } from './parse-env.ts'

/** Kafka's own rule for topic names; the longest base name (`conversions`) must still fit in 249. */
export function topicPrefix(): z.ZodType<string, string | undefined> {
  return z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'may use only A-Z a-z 0-9 . _ -')
    .max(238, 'must be at most 238 characters')
    .default('') as z.ZodType<string, string | undefined>
}

/** `host:port,host:port` of Redis Cluster nodes. */
function redisNodeList(): z.ZodType<string[], string | undefined> {
  return parsedWith((text) => {
    const nodes = text.split(',').map((node) => node.trim())
    for (const node of nodes) {
      const match = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(node)
      if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65_535) {
        throw new Error(`must be a comma-separated list of host:port (bad entry "${node}")`)
      }
    }
    return nodes
  })
}

/** Every service: the environment it runs in and how much it logs. */
export const serviceFields = {
  NODE_ENV: nodeEnv(),
  LOG_LEVEL: logLevel('info'),
  HOST: z.string().min(1).default('0.0.0.0'),
}

/** Every service that talks to Kafka (SPEC §7). */
export const kafkaFields = {
  KAFKA_BROKERS: brokerList('127.0.0.1:9092'),
  /** Put in front of every topic name, so environments can share a broker. */
  KAFKA_TOPIC_PREFIX: topicPrefix(),
  /** Partitions of every pipeline topic, when a service is the first to create them. */
  KAFKA_TOPIC_PARTITIONS: positiveInt(6),
  /** Replicas of every pipeline topic; with 3 or more, `min.insync.replicas=2`. */
  KAFKA_REPLICATION_FACTOR: positiveInt(1),
}

/** Every service that talks to Redis. */
export const redisFields = {
  REDIS_URL: url({ protocols: ['redis:', 'rediss:'], default: 'redis://127.0.0.1:6379' }),
  /** `host:port,…`: Redis Cluster mode, instead of REDIS_URL. */
  REDIS_CLUSTER_NODES: redisNodeList().optional(),
  /** Put in front of every Redis key. */
  REDIS_KEY_PREFIX: z.string().min(1).default('cj:'),
}

/** Every service that signs or verifies click IDs. */
export const clickIdFields = {
  /** "<keyId>:<secret>,…"; required in production, the built-in development key otherwise. */
  CLICK_ID_KEYS: parsedWith(parseClickIdKeys).optional(),
  /** The key new click IDs are signed with; default the highest key ID. */
  CLICK_ID_KEY_ID: z.string().regex(/^\d{1,3}$/, 'must be a key ID 0–255').transform(Number).optional(),
}

/** Every service with an admin API. */
export const adminFields = {
  /** Bearer token of the admin API; required in production, a development token otherwise. */
  ADMIN_TOKEN: z.string().min(8, 'must be at least 8 characters').optional(),
}

/** The admin token outside production when none is set; logged as a warning. */
export const DEV_ADMIN_TOKEN = 'dev-admin-token'

type Output<F extends z.ZodRawShape> = z.output<z.ZodObject<F>>

export interface KafkaSettings {
  kafkaBrokers: string[]
  topicPrefix: string
  topicPartitions: number
  replicationFactor: number
}

export function kafkaSettings(e: Output<typeof kafkaFields>): KafkaSettings {
  return {
    kafkaBrokers: e.KAFKA_BROKERS,
    topicPrefix: e.KAFKA_TOPIC_PREFIX,
    topicPartitions: e.KAFKA_TOPIC_PARTITIONS,
    replicationFactor: e.KAFKA_REPLICATION_FACTOR,
  }
}

export interface RedisSettings {
  redisUrl: string
  /** Set: Redis Cluster mode with these seed nodes. */
  redisClusterNodes: string[] | undefined
  redisKeyPrefix: string
}

export function redisSettings(e: Output<typeof redisFields>): RedisSettings {
  return { redisUrl: e.REDIS_URL, redisClusterNodes: e.REDIS_CLUSTER_NODES, redisKeyPrefix: e.REDIS_KEY_PREFIX }
}

export interface ClickIdSettings {
  clickIdKeys: Map<number, string>
  clickIdKeyId: number
  /** The public development key is in use (never in production). */
  developmentClickIdKey: boolean
}

/**
 * The click-ID keys: the configured ones, or outside production the development key with a
 * warning. Problems are added to `problems` (the caller throws them with its own).
 */
export function clickIdSettings(
  e: Output<typeof clickIdFields> & { NODE_ENV: NodeEnv },
  problems: ConfigProblem[],
  warnings: string[],
): ClickIdSettings {
  let keys = e.CLICK_ID_KEYS
  const development = keys === undefined
  if (keys === undefined) {
    if (e.NODE_ENV === 'production') problems.push({ variable: 'CLICK_ID_KEYS', message: 'is required in production' })
    else warnings.push('CLICK_ID_KEYS not set: using the built-in development key (click IDs are forgeable)')
    keys = parseClickIdKeys(DEVELOPMENT_CLICK_ID_KEYS)
  }
  const keyId = e.CLICK_ID_KEY_ID ?? Math.max(...keys.keys())
  if (!keys.has(keyId)) problems.push({ variable: 'CLICK_ID_KEY_ID', message: `key ${keyId} is not in CLICK_ID_KEYS` })
  return { clickIdKeys: keys, clickIdKeyId: keyId, developmentClickIdKey: development }
}

/**
 * The admin token: the configured one, or outside production the development token with a
 * warning naming `api` (what accepts it). Problems are added to `problems`.
 */
export function adminToken(
  e: Output<typeof adminFields> & { NODE_ENV: NodeEnv },
  api: string,
  problems: ConfigProblem[],
  warnings: string[],
): string {
  if (e.ADMIN_TOKEN) return e.ADMIN_TOKEN
  if (e.NODE_ENV === 'production') problems.push({ variable: 'ADMIN_TOKEN', message: 'is required in production' })
  else warnings.push(`ADMIN_TOKEN not set: ${api} accepts the development token "${DEV_ADMIN_TOKEN}"`)
  return DEV_ADMIN_TOKEN
}

/** Throws every collected problem at once, naming each variable. */
export function throwProblems(problems: readonly ConfigProblem[]): void {
  if (problems.length > 0) throw new ConfigError(problems)
}
