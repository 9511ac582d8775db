import { hashTag, keySlot, type RedisClient } from '@clickjoin/redis'
import type { DeliveryJob } from './domain/jobs.ts'

/**
 * Shards of the queue. Each shard's keys carry one hash tag, so every script and MULTI touches
 * one slot (Redis Cluster); the shards spread the due sets over the cluster's nodes. Fixed:
 * changing it would strand the jobs of the shards that disappear.
 */
export const QUEUE_SHARDS = 16

/** The shard of a job: from its ID, so a redelivered outcome and `redeliver` find the same one. */
function queueShard(jobId: string): number {
  return keySlot(jobId) % QUEUE_SHARDS
}

/**
 * The durable pending deliveries (docs/dispatcher.md), in Redis next to the rest of the state,
 * in QUEUE_SHARDS shards, shard `n` under the hash tag `{dq<n>}`:
 * `<prefix>dispatch:{dq<n>}:job:<job_id>` = the job's JSON, and the sorted set
 * `<prefix>dispatch:{dq<n>}:due` = the shard's job IDs scored by when they are next due (epoch ms).
 *
 * Claiming moves a job's score to the end of a lease instead of removing it, so a job
 * whose dispatcher dies mid-call comes due again when the lease runs out: nothing that was
 * recorded is ever lost, at the price of a second call (the receiver deduplicates by
 * webhook-id). Finished jobs leave the due set and stay readable for a while
 * (`keepDeliveredMs`, `keepFinishedMs` for failed and refused ones), for `clickjoin redeliver`.
 */
export function deliveryQueueKeys(prefix: string) {
  const base = (shard: number) => `${prefix}dispatch:${hashTag(`dq${shard}`)}`
  return {
    due: (shard: number) => `${base(shard)}:due`,
    job: (jobId: string) => `${base(queueShard(jobId))}:job:${jobId}`,
  }
}

// KEYS: the shard's due set, then the job keys; ARGV: due-at, then each job's ID and JSON, in
// KEYS order. A job that exists already (a redelivered outcome) is left as it is.
const ENQUEUE = `
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'NX') then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2 * i - 2])
    added = added + 1
  end
end
return added`

// KEYS: the shard's due set; ARGV: now, lease end, limit. Atomic: two instances never claim the same job.
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids`

export interface DeliveryQueue {
  /** Records jobs durably (once each: existing ones are kept); resolves after Redis has them. */
  enqueue(jobs: readonly DeliveryJob[], dueAt: number): Promise<number>
  /** Up to `limit` due jobs, each leased to the caller until `leaseUntil`. */
  claim(now: number, limit: number, leaseUntil: number): Promise<DeliveryJob[]>
  /** Puts claimed jobs back, unattempted, for `dueAt`. */
  defer(jobIds: readonly string[], dueAt: number): Promise<void>
  /** Stores the job after an attempt: due again at `nextAttemptAt`, or finished when undefined. */
  record(job: DeliveryJob, nextAttemptAt: number | undefined): Promise<void>
  /** Makes finished jobs due now, with a new retry period; answers the IDs that were found. */
  redeliver(jobIds: readonly string[], now: number): Promise<string[]>
  job(jobId: string): Promise<DeliveryJob | undefined>
  pendingCount(): Promise<number>
}

/** The items of each shard, indexed by shard (empty ones included), in the given order. */
function byShard<T>(items: Iterable<T>, jobIdOf: (item: T) => string): T[][] {
  const shards: T[][] = Array.from({ length: QUEUE_SHARDS }, () => [])
  for (const item of items) shards[queueShard(jobIdOf(item))]!.push(item)
  return shards
}

async function execOrThrow(multi: ReturnType<RedisClient['multi']>): Promise<void> {
  const results = await multi.exec()
  const failed = results?.find(([error]) => error !== null)
  if (!results || failed) throw failed?.[0] ?? new Error('redis transaction aborted')
}

export function createDeliveryQueue(
  redis: RedisClient,
  options: { keyPrefix: string; keepFinishedMs: number; keepDeliveredMs: number },
): DeliveryQueue {
  const keys = deliveryQueueKeys(options.keyPrefix)
  const parse = (json: string | null): DeliveryJob | undefined => (json === null ? undefined : (JSON.parse(json) as DeliveryJob))
  // Where the next claim starts, so no shard is always served last.
  let nextShard = 0

  async function claimFromShard(shard: number, now: number, limit: number, leaseUntil: number): Promise<{ jobs: DeliveryJob[]; full: boolean }> {
    const ids = (await redis.eval(CLAIM, 1, keys.due(shard), String(now), String(leaseUntil), String(limit))) as string[]
    if (ids.length === 0) return { jobs: [], full: false }
    const values = await redis.mget(...ids.map((id) => keys.job(id)))
    const jobs: DeliveryJob[] = []
    const vanished: string[] = []
    ids.forEach((id, i) => {
      const job = parse(values[i] ?? null)
      if (job && job.state === 'pending') jobs.push(job)
      else vanished.push(id)
    })
    if (vanished.length > 0) await redis.zrem(keys.due(shard), ...vanished)
    return { jobs, full: ids.length === limit }
  }

  return {
    async enqueue(jobs, dueAt) {
      let added = 0
      for (const [shard, group] of byShard(jobs, (job) => job.job_id).entries()) {
        // Chunks keep one script call short: Redis runs nothing else meanwhile.
        for (let i = 0; i < group.length; i += 200) {
          const chunk = group.slice(i, i + 200)
          const args = [String(dueAt), ...chunk.flatMap((job) => [job.job_id, JSON.stringify(job)])]
          added += Number(await redis.eval(ENQUEUE, 1 + chunk.length, keys.due(shard), ...chunk.map((job) => keys.job(job.job_id)), ...args))
        }
      }
      return added
    },
    async claim(now, limit, leaseUntil) {
      // Rounds over the shards that may hold more: the limit is shared out among them (from a
      // rotating start), and a shard that answers fewer than its share is empty for now.
      const claimed: DeliveryJob[] = []
      let candidates = Array.from({ length: QUEUE_SHARDS }, (_, i) => (nextShard + i) % QUEUE_SHARDS)
      nextShard = (nextShard + 1) % QUEUE_SHARDS
      while (claimed.length < limit && candidates.length > 0) {
        const remaining = limit - claimed.length
        const shares = candidates
          .map((shard, i) => ({ shard, share: Math.floor(remaining / candidates.length) + (i < remaining % candidates.length ? 1 : 0) }))
          .filter((s) => s.share > 0)
        const results = await Promise.all(shares.map((s) => claimFromShard(s.shard, now, s.share, leaseUntil)))
        for (const result of results) claimed.push(...result.jobs)
        const stillFull = new Set(shares.filter((_, i) => results[i]!.full).map((s) => s.shard))
        const unasked = candidates.slice(shares.length)
        candidates = [...candidates.filter((shard) => stillFull.has(shard)), ...unasked]
      }
      return claimed
    },
    async defer(jobIds, dueAt) {
      await Promise.all(
        byShard(jobIds, (id) => id).map(async (ids, shard) => {
          // XX: a job finished meanwhile by a redeliver race is not revived.
          if (ids.length > 0) await redis.zadd(keys.due(shard), 'XX', ...ids.flatMap((id) => [String(dueAt), id]))
        }),
      )
    },
    async record(job, nextAttemptAt) {
      const due = keys.due(queueShard(job.job_id))
      const multi = redis.multi()
      if (nextAttemptAt === undefined) {
        const keepMs = job.state === 'delivered' ? options.keepDeliveredMs : options.keepFinishedMs
        multi.set(keys.job(job.job_id), JSON.stringify(job), 'PX', keepMs)
        multi.zrem(due, job.job_id)
      } else {
        multi.set(keys.job(job.job_id), JSON.stringify(job))
        multi.zadd(due, String(nextAttemptAt), job.job_id)
      }
      await execOrThrow(multi)
    },
    async redeliver(jobIds, now) {
      const found: string[] = []
      for (const id of jobIds) {
        const job = parse(await redis.get(keys.job(id)))
        if (!job) continue
        const renewed: DeliveryJob = { ...job, state: 'pending', first_attempt_at: 0 }
        await execOrThrow(redis.multi().set(keys.job(id), JSON.stringify(renewed)).zadd(keys.due(queueShard(id)), String(now), id))
        found.push(id)
      }
      return found
    },
    job: async (jobId) => parse(await redis.get(keys.job(jobId))),
    async pendingCount() {
      const counts = await Promise.all(Array.from({ length: QUEUE_SHARDS }, (_, shard) => redis.zcard(keys.due(shard))))
      return counts.reduce((sum, n) => sum + n, 0)
    },
  }
}
