import type { RedisClient } from '@clickjoin/redis'
import { campaignChecker, partnerChecker, type Campaign, type Partner } from './schema.ts'

/**
 * Redis layout (docs/redis.md): two hashes, `<prefix>campaigns` and `<prefix>partners`,
 * field = ID, value = the JSON of the stored record; a write also publishes
 * `{"kind","id"}` on `<prefix>config-changes`, so every replica reloads that record within
 * milliseconds. Readers serve from memory: no Redis round trip on the hot path.
 *
 * Redis Cluster (docs/redis-cluster.md): every command names one key, and a write's MULTI holds
 * one key plus a PUBLISH (which names none), so the two hashes may live on different nodes.
 * PUBLISH in a cluster reaches subscribers on every node through the cluster bus.
 */
export function configKeys(prefix: string) {
  return {
    campaigns: `${prefix}campaigns`,
    partners: `${prefix}partners`,
    changes: `${prefix}config-changes`,
  }
}

export interface ConfigStoreOptions {
  /** One Redis or a Cluster (`createRedisClient` of @clickjoin/redis). */
  redis: RedisClient
  /**
   * A second connection (`duplicateClient(redis)`): a subscribed ioredis connection can run
   * nothing else.
   */
  subscriber: RedisClient
  keyPrefix?: string
  /** Full reload as a safety net for missed notifications. */
  refreshIntervalMs?: number
  log?: (entry: { level: string; message: string }) => void
}

export interface ConfigStore {
  readonly id: string
  start(): Promise<void>
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
  campaign(id: string): Campaign | undefined
  campaigns(): Campaign[]
  partner(id: string): Partner | undefined
  partners(): Partner[]
  putCampaign(campaign: Campaign): Promise<void>
  putPartner(partner: Partner): Promise<void>
}

type Kind = 'campaign' | 'partner'

export function createConfigStore(options: ConfigStoreOptions): ConfigStore {
  const keys = configKeys(options.keyPrefix ?? 'cj:')
  const { redis, subscriber } = options
  const log = options.log ?? (() => undefined)
  const campaigns = new Map<string, Campaign>()
  const partners = new Map<string, Partner>()
  let refreshTimer: NodeJS.Timeout | undefined
  let loadedAt = 0
  let lastError: string | undefined

  function parse(kind: Kind, id: string, json: string): Campaign | Partner | undefined {
    try {
      const value: unknown = JSON.parse(json)
      const ok = kind === 'campaign' ? campaignChecker.Check(value) : partnerChecker.Check(value)
      if (ok) return value as Campaign | Partner
    } catch {
      // fall through
    }
    log({ level: 'error', message: `ignoring invalid stored ${kind} ${id}` })
    return undefined
  }

  async function loadAll(): Promise<void> {
    const [c, p] = await Promise.all([redis.hgetall(keys.campaigns), redis.hgetall(keys.partners)])
    const nextCampaigns = new Map<string, Campaign>()
    for (const [id, json] of Object.entries(c)) {
      const v = parse('campaign', id, json)
      if (v) nextCampaigns.set(id, v as Campaign)
    }
    const nextPartners = new Map<string, Partner>()
    for (const [id, json] of Object.entries(p)) {
      const v = parse('partner', id, json)
      if (v) nextPartners.set(id, v as Partner)
    }
    replace(campaigns, nextCampaigns)
    replace(partners, nextPartners)
    loadedAt = Date.now()
    lastError = undefined
  }

  async function reloadOne(kind: Kind, id: string): Promise<void> {
    const json = await redis.hget(kind === 'campaign' ? keys.campaigns : keys.partners, id)
    const map: Map<string, Campaign | Partner> = kind === 'campaign' ? campaigns : partners
    if (json === null) map.delete(id)
    else {
      const v = parse(kind, id, json)
      if (v) map.set(id, v)
    }
  }

  const onMessage = (channel: string, message: string) => {
    if (channel !== keys.changes) return
    try {
      const { kind, id } = JSON.parse(message) as { kind: Kind; id: string }
      reloadOne(kind, id).catch((err: unknown) => (lastError = String(err)))
    } catch {
      log({ level: 'warn', message: `unreadable config change notification: ${message}` })
    }
  }
  // After a reconnect, notifications sent meanwhile are lost: reload everything.
  const onReady = () => void loadAll().catch((err: unknown) => (lastError = String(err)))

  async function put(kind: Kind, id: string, json: string): Promise<void> {
    await redis
      .multi()
      .hset(kind === 'campaign' ? keys.campaigns : keys.partners, id, json)
      .publish(keys.changes, JSON.stringify({ kind, id }))
      .exec()
    await reloadOne(kind, id) // read-your-writes on this replica
  }

  return {
    id: 'config-store',
    async start() {
      subscriber.on('message', onMessage)
      await subscriber.subscribe(keys.changes) // subscribe before loading: no change slips between
      subscriber.on('ready', onReady)
      await loadAll()
      refreshTimer = setInterval(onReady, options.refreshIntervalMs ?? 30_000)
      refreshTimer.unref()
    },
    async stop() {
      if (refreshTimer) clearInterval(refreshTimer)
      subscriber.off('message', onMessage)
      subscriber.off('ready', onReady)
      await subscriber.unsubscribe(keys.changes).catch(() => undefined)
    },
    health() {
      if (lastError) return { ok: false, detail: `config reload failed: ${lastError}` }
      return { ok: loadedAt > 0, detail: `${campaigns.size} campaigns, ${partners.size} partners` }
    },
    campaign: (id) => campaigns.get(id),
    campaigns: () => [...campaigns.values()],
    partner: (id) => partners.get(id),
    partners: () => [...partners.values()],
    putCampaign: (c) => put('campaign', c.id, JSON.stringify(c)),
    putPartner: (p) => put('partner', p.id, JSON.stringify(p)),
  }
}

function replace<K, V>(target: Map<K, V>, source: Map<K, V>): void {
  target.clear()
  for (const [k, v] of source) target.set(k, v)
}
