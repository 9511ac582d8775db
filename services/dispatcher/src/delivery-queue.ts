import type { Redis } from 'ioredis'
import type { DeliveryJob } from './domain/jobs.ts'

/**
 * The durable pending deliveries (docs/dispatcher.md), in Redis next to the rest of the
 * state: one string per job, `<prefix>dispatch:job:<job_id>` = its JSON, and one sorted set
 * `<prefix>dispatch:due` = job IDs scored by when they are next due (epoch ms).
 *
 * Claiming moves a job's score to the end of a lease instead of removing it, so a job
 * whose dispatcher dies mid-call comes due again when the lease runs out: nothing that was
 * recorded is ever lost, at the price of a second call (the receiver deduplicates by
 * webhook-id). Finished jobs leave the due set and stay readable for a while
 * (`keepDeliveredMs`, `keepFinishedMs` for failed and refused ones), for `clickjoin redeliver`.
 */
export function deliveryQueueKeys(prefix: string) {
  return {
    due: `${prefix}dispatch:due`,
    job: (jobId: string) => `${prefix}dispatch:job:${jobId}`,
  }
}

// KEYS: due, job keys…; ARGV: due-at, then the JSON of each job in KEYS order.
// A job that exists already (a redelivered outcome) is left as it is.
const ENQUEUE = `
local added = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[i], 'NX') then
    redis.call('ZADD', KEYS[1], ARGV[1], string.sub(KEYS[i], tonumber(ARGV[#KEYS + 1]) + 1))
    added = added + 1
  end
end
return added`

// KEYS: due; ARGV: now, lease end, limit. Atomic: two instances never claim the same job.
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids`

export interface DeliveryQueue {
  /** Records jobs durably (once each: existing ones are kept); resolves after Redis has them. */
  enqueue(jobs: readonly DeliveryJob[], dueAt: number): Promise<number>
  /** Up to `limit` due jobs, each leased to the caller until `leaseUntil`. */
  claim(now: number, limit: number, leaseUntil: number): Promise<DeliveryJob[]>
  /** Puts a claimed job back, unattempted, for `dueAt`. */
  defer(jobIds: readonly string[], dueAt: number): Promise<void>
  /** Stores the job after an attempt: due again at `nextAttemptAt`, or finished when undefined. */
  record(job: DeliveryJob, nextAttemptAt: number | undefined): Promise<void>
  /** Makes finished jobs due now, with a new retry period; answers the IDs that were found. */
  redeliver(jobIds: readonly string[], now: number): Promise<string[]>
  job(jobId: string): Promise<DeliveryJob | undefined>
  pendingCount(): Promise<number>
}

export function createDeliveryQueue(
  redis: Redis,
  options: { keyPrefix: string; keepFinishedMs: number; keepDeliveredMs: number },
): DeliveryQueue {
  const keys = deliveryQueueKeys(options.keyPrefix)
  const jobKeyPrefixLength = keys.job('').length
  const parse = (json: string | null): DeliveryJob | undefined => (json === null ? undefined : (JSON.parse(json) as DeliveryJob))

  return {
    async enqueue(jobs, dueAt) {
      let added = 0
      // Chunks keep one script call short: Redis runs nothing else meanwhile.
      for (let i = 0; i < jobs.length; i += 200) {
        const chunk = jobs.slice(i, i + 200)
        const jobKeys = chunk.map((job) => keys.job(job.job_id))
        const args = [String(dueAt), ...chunk.map((job) => JSON.stringify(job)), String(jobKeyPrefixLength)]
        added += Number(await redis.eval(ENQUEUE, 1 + jobKeys.length, keys.due, ...jobKeys, ...args))
      }
      return added
    },
    async claim(now, limit, leaseUntil) {
      const ids = (await redis.eval(CLAIM, 1, keys.due, String(now), String(leaseUntil), String(limit))) as string[]
      if (ids.length === 0) return []
      const values = await redis.mget(...ids.map((id) => keys.job(id)))
      const jobs: DeliveryJob[] = []
      const vanished: string[] = []
      ids.forEach((id, i) => {
        const job = parse(values[i] ?? null)
        if (job && job.state === 'pending') jobs.push(job)
        else vanished.push(id)
      })
      if (vanished.length > 0) await redis.zrem(keys.due, ...vanished)
      return jobs
    },
    async defer(jobIds, dueAt) {
      if (jobIds.length === 0) return
      // XX: a job finished meanwhile by a redeliver race is not revived.
      await redis.zadd(keys.due, 'XX', ...jobIds.flatMap((id) => [String(dueAt), id]))
    },
    async record(job, nextAttemptAt) {
      const multi = redis.multi()
      if (nextAttemptAt === undefined) {
        const keepMs = job.state === 'delivered' ? options.keepDeliveredMs : options.keepFinishedMs
        multi.set(keys.job(job.job_id), JSON.stringify(job), 'PX', keepMs)
        multi.zrem(keys.due, job.job_id)
      } else {
        multi.set(keys.job(job.job_id), JSON.stringify(job))
        multi.zadd(keys.due, String(nextAttemptAt), job.job_id)
      }
      const results = await multi.exec()
      const failed = results?.find(([error]) => error !== null)
      if (!results || failed) throw failed?.[0] ?? new Error('redis transaction aborted')
    },
    async redeliver(jobIds, now) {
      const found: string[] = []
      for (const id of jobIds) {
        const job = parse(await redis.get(keys.job(id)))
        if (!job) continue
        const renewed: DeliveryJob = { ...job, state: 'pending', first_attempt_at: 0 }
        await redis.multi().set(keys.job(id), JSON.stringify(renewed)).zadd(keys.due, String(now), id).exec()
        found.push(id)
      }
      return found
    },
    job: async (jobId) => parse(await redis.get(keys.job(jobId))),
    pendingCount: () => redis.zcard(keys.due),
  }
}
