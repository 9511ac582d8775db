import type { RedisClient } from '@clickjoin/redis'
import { publisherChecker, type Publisher } from './publisher-schema.ts'

/**
 * Redis layout (docs/redis.md, docs/dispatcher.md): one hash `<prefix>publishers`, field = the
 * publisher ID, value = the JSON of the stored record, next to `<prefix>campaigns` and
 * `<prefix>partners`. Readers go to Redis on every use (one HMGET per Kafka batch in the
 * dispatcher, one HGET per admin request): a change takes effect at once on every replica,
 * and nothing is cached that could go stale. Every command names that one key, so it works on a
 * Redis Cluster as it is.
 */
export function publisherKeys(prefix: string) {
  return { publishers: `${prefix}publishers` }
}

export interface PublisherStore {
  /** The stored publisher, or undefined when there is none (or what is stored is unreadable). */
  publisher(id: string): Promise<Publisher | undefined>
  /** Many at once, in one round trip: a Map of those that exist. */
  publishers(ids: readonly string[]): Promise<Map<string, Publisher>>
  putPublisher(publisher: Publisher): Promise<void>
}

export function createPublisherStore(options: {
  /** One Redis or a Cluster (`createRedisClient` of @clickjoin/redis). */
  redis: RedisClient
  keyPrefix?: string
  log?: (entry: { level: string; message: string }) => void
}): PublisherStore {
  const keys = publisherKeys(options.keyPrefix ?? 'cj:')
  const log = options.log ?? (() => undefined)

  function parse(id: string, json: string | null): Publisher | undefined {
    if (json === null) return undefined
    try {
      const value: unknown = JSON.parse(json)
      if (publisherChecker.Check(value)) return value
    } catch {
      // fall through
    }
    log({ level: 'error', message: `ignoring invalid stored publisher ${id}` })
    return undefined
  }

  return {
    publisher: async (id) => parse(id, await options.redis.hget(keys.publishers, id)),
    async publishers(ids) {
      const unique = [...new Set(ids)]
      const found = new Map<string, Publisher>()
      if (unique.length === 0) return found
      const values = await options.redis.hmget(keys.publishers, ...unique)
      unique.forEach((id, i) => {
        const publisher = parse(id, values[i] ?? null)
        if (publisher) found.set(id, publisher)
      })
      return found
    },
    async putPublisher(publisher) {
      await options.redis.hset(keys.publishers, publisher.id, JSON.stringify(publisher))
    },
  }
}
