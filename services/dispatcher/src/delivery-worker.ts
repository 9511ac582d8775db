import { webhookSecretKey, type Publisher, type PublisherStore } from '@clickjoin/campaigns'
import { encodeEvent, postbackDeliveryV1Contract, type PostbackDeliveryV1 } from '@clickjoin/contracts'
import type { EventProducer } from '@clickjoin/kafka'
import type { Logger } from '@clickjoin/service-runtime'
import type { DeliveryQueue } from './delivery-queue.ts'
import { afterFailure, type BackoffPolicy } from './domain/backoff.ts'
import type { CallResult, HostGate } from './domain/host-gate.ts'
import type { DeliveryJob } from './domain/jobs.ts'
import { webhookHeaders } from './domain/signature.ts'
import type { AttemptResult, PostbackClient } from './http-client.ts'
import type { DispatcherMetrics } from './metrics.ts'

export interface DeliveryWorkerDeps {
  queue: DeliveryQueue
  client: PostbackClient
  gate: HostGate
  publishers: PublisherStore
  producer: EventProducer
  deliveriesTopic: string
  metrics: DispatcherMetrics
  log: Logger
  now?: () => number
  random?: () => number
}

export interface DeliveryWorkerSettings {
  concurrency: number
  /** Claimed deliveries held in memory per busy host, started as its calls finish (beyond: put back). */
  hostQueue: number
  pollIntervalMs: number
  leaseMs: number
  backoff: BackoffPolicy
}

export interface DeliveryWorker {
  readonly id: string
  /** Begins claiming due deliveries (returns at once; the loop runs until stop). */
  start(): Promise<void>
  /** Stops claiming and waits for the calls in flight to be recorded. */
  stop(): Promise<void>
  /** Looks for due deliveries now (after new ones were recorded). */
  wake(): void
  health(): { ok: boolean; detail: string }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host
  } catch {
    return '(invalid)'
  }
}

function breakerResult(result: AttemptResult): CallResult {
  if (result.kind === 'response') {
    if (result.statusCode >= 200 && result.statusCode < 300) return 'success'
    return result.statusCode >= 500 || result.statusCode === 429 ? 'failure' : 'neutral'
  }
  return result.kind === 'refused' ? 'neutral' : 'failure'
}

/**
 * Takes due deliveries from the queue and calls them, each host behind its own gate. One
 * attempt: sign, call, produce the attempt's record to the deliveries topic (acknowledged by
 * Kafka), then store the job's new state in Redis. A crash anywhere in between leaves the job
 * leased, and it is attempted again when the lease ends: at least once, never lost.
 */
export function createDeliveryWorker(deps: DeliveryWorkerDeps, settings: DeliveryWorkerSettings): DeliveryWorker {
  const now = deps.now ?? Date.now
  const random = deps.random ?? Math.random
  const inFlight = new Set<Promise<void>>()
  let running = false
  let loop: Promise<void> | undefined
  let wakeUp: (() => void) | undefined
  let lastError: string | undefined

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wakeUp = undefined
        resolve()
      }
      wakeUp = done
    })

  async function attempt(job: DeliveryJob, host: string, publisher: Publisher | undefined): Promise<void> {
    const attemptNo = job.attempts + 1
    const startedAt = now()
    const key = publisher?.secret ? webhookSecretKey(publisher.secret) : undefined
    const headers = {
      ...webhookHeaders({ webhookId: job.webhook_id, timestampSeconds: Math.floor(startedAt / 1000), body: job.body, key }),
      'user-agent': 'clickjoin-dispatcher/1',
      ...(job.method === 'POST' ? { 'content-type': 'application/json' } : {}),
    }
    let result: AttemptResult | undefined
    try {
      result = await deps.client.send({ url: job.url, method: job.method, headers, body: job.body })
    } finally {
      // The host's slot is free as soon as the call is over: its next waiting job starts while
      // this one is still being recorded.
      deps.gate.release(host, result ? breakerResult(result) : 'failure', now())
      startWaiting(host)
    }
    const finishedAt = now()

    const firstAttemptAt = job.first_attempt_at || startedAt
    let state: PostbackDeliveryV1['state']
    let nextAttemptAt: number | undefined
    if (result.kind === 'refused') state = 'refused'
    else if (result.kind === 'response' && result.statusCode >= 200 && result.statusCode < 300) state = 'delivered'
    else {
      const next = afterFailure({ attempt: attemptNo, firstAttemptAt, now: finishedAt, random: random() }, settings.backoff)
      state = next.state
      if (next.state === 'retrying') nextAttemptAt = next.nextAttemptAt
    }
    const record: PostbackDeliveryV1 = {
      v: 1,
      delivery_id: `${job.job_id}:${attemptNo}`,
      job_id: job.job_id,
      webhook_id: job.webhook_id,
      conversion_id: job.conversion_id,
      version: job.version,
      publisher_id: job.publisher_id,
      campaign_id: job.campaign_id,
      url: job.url,
      method: job.method,
      attempt: attemptNo,
      status_code: result.kind === 'response' ? result.statusCode : 0,
      duration_ms: result.durationMs,
      error:
        result.kind === 'response'
          ? state === 'delivered'
            ? ''
            : `HTTP ${result.statusCode}`
          : result.error.slice(0, 1024),
      state,
      sent_at: startedAt,
      next_attempt_at: nextAttemptAt ?? 0,
    }
    await deps.producer.send(deps.deliveriesTopic, { key: job.conversion_id, value: encodeEvent(postbackDeliveryV1Contract, record) })
    await deps.queue.record(
      { ...job, attempts: attemptNo, first_attempt_at: firstAttemptAt, state: state === 'retrying' ? 'pending' : state },
      nextAttemptAt,
    )
    const label = state === 'retrying' ? 'retried' : state
    deps.metrics.attempts.inc({ result: label })
    deps.metrics.latency.observe({ host, result: label }, result.durationMs / 1000)
  }

  // Claimed jobs waiting for a slot of their busy host, with the publisher read at claim time.
  const waiting = new Map<string, Array<{ job: DeliveryJob; publisher: Publisher | undefined }>>()
  let waitingCount = 0

  function startCall(job: DeliveryJob, host: string, publisher: Publisher | undefined): void {
    const call = attempt(job, host, publisher)
      .catch((err: unknown) => {
        // Not recorded: the lease brings the job back.
        lastError = err instanceof Error ? err.message : String(err)
        deps.log.error({ err, jobId: job.job_id }, 'delivery attempt not recorded; it is retried when its lease ends')
      })
      .finally(() => {
        inFlight.delete(call)
        deps.metrics.inFlight.set(inFlight.size)
        startWaiting(host)
        wakeUp?.()
      })
    inFlight.add(call)
  }

  /** A call to `host` ended: start its next waiting job, or put them all back if its circuit opened. */
  function startWaiting(host: string): void {
    const queue = waiting.get(host)
    while (queue && queue.length > 0) {
      const admission = deps.gate.admit(host, now(), random())
      if (admission.admitted) {
        const next = queue.shift()!
        waitingCount--
        startCall(next.job, host, next.publisher)
        continue
      }
      if (admission.reason === 'circuit_open') {
        const ids = queue.map((w) => w.job.job_id)
        waitingCount -= queue.length
        queue.length = 0
        deps.metrics.deferred.inc({ reason: admission.reason }, ids.length)
        deps.queue.defer(ids, admission.retryAt).catch((err: unknown) => deps.log.warn({ err }, 'putting back deliveries failed; their lease brings them back'))
      }
      break
    }
    if (queue?.length === 0) waiting.delete(host)
  }

  async function claimAndStart(): Promise<number> {
    const free = settings.concurrency - inFlight.size - waitingCount
    if (free <= 0) return 0
    const t = now()
    const jobs = await deps.queue.claim(t, free, t + settings.leaseMs)
    if (jobs.length === 0) return 0
    const publishers = await deps.publishers.publishers(jobs.map((job) => job.publisher_id))
    const deferred = new Map<number, string[]>()
    let started = 0
    for (const job of jobs) {
      const host = hostOf(job.url)
      const publisher = publishers.get(job.publisher_id)
      const queue = waiting.get(host)
      const admission = queue?.length ? ({ admitted: false, reason: 'busy', retryAt: t } as const) : deps.gate.admit(host, t, random())
      if (admission.admitted) {
        startCall(job, host, publisher)
        started++
      } else if (admission.reason === 'busy' && (queue?.length ?? 0) < settings.hostQueue) {
        if (queue) queue.push({ job, publisher })
        else waiting.set(host, [{ job, publisher }])
        waitingCount++
        started++
      } else {
        const retryAt = admission.reason === 'busy' ? t + 100 + Math.round(random() * 400) : admission.retryAt
        deps.metrics.deferred.inc({ reason: admission.reason })
        deferred.set(retryAt, [...(deferred.get(retryAt) ?? []), job.job_id])
      }
    }
    deps.metrics.inFlight.set(inFlight.size)
    deps.metrics.openCircuits.set(deps.gate.openCircuits(t))
    await Promise.all([...deferred].map(([at, ids]) => deps.queue.defer(ids, at)))
    return started
  }

  async function run(): Promise<void> {
    while (running) {
      try {
        const started = await claimAndStart()
        lastError = undefined
        // Work was found: look again at once (more may be due); else wait for a wake-up or the poll.
        if (started === 0 || inFlight.size + waitingCount >= settings.concurrency) await sleep(settings.pollIntervalMs)
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err)
        deps.log.warn({ err }, 'claiming due deliveries failed; retrying')
        await sleep(Math.max(settings.pollIntervalMs, 1_000))
      }
    }
  }

  return {
    id: 'delivery-worker',
    start() {
      if (!running) {
        running = true
        loop = run()
      }
      return Promise.resolve()
    },
    async stop() {
      running = false
      wakeUp?.()
      await loop
      // Waiting jobs are not started any more: back to Redis (their lease would bring them back anyway).
      const ids = [...waiting.values()].flatMap((queue) => queue.map((w) => w.job.job_id))
      waiting.clear()
      waitingCount = 0
      await deps.queue.defer(ids, now()).catch(() => undefined)
      while (inFlight.size > 0) await Promise.all([...inFlight])
    },
    wake: () => wakeUp?.(),
    health: () =>
      lastError === undefined
        ? { ok: running, detail: running ? `${inFlight.size} calls in flight` : 'stopped' }
        : { ok: false, detail: lastError },
  }
}
