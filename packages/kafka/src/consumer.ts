import type { Consumer, Kafka, KafkaMessage } from 'kafkajs'

export interface PartitionBatch {
  topic: string
  partition: number
  messages: KafkaMessage[]
  /** Call during long work so the group does not consider this member dead. */
  heartbeat(): Promise<void>
  /** False once the consumer is stopping or the partition was revoked: stop early. */
  isActive(): boolean
}

/**
 * What a handler returns to have the batch committed later: once `stored` resolves. The consumer
 * fetches on meanwhile, so decoding the next batches overlaps storing this one.
 */
export interface DeferredCommit {
  /** Resolves when the batch is durable; a rejection restarts the consumer (the batch is redelivered). */
  stored: Promise<void>
}

/** Where the consumer reports its crashes and restarts. */
export interface ConsumerLog {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
}

/**
 * Group membership defaults. A member killed with -9 stops heartbeating; the coordinator
 * evicts it after `sessionTimeout`, and only then does the rebalance that hands its
 * partitions to the restarted (or another) member complete. 10 s keeps a restarted service
 * consuming again within 15 s; the price is that a member whose event loop stalls for 10 s
 * (a long GC, a blocked handler that does not heartbeat) is evicted and its partitions
 * move. Heartbeats every 3 s leave two misses before eviction. See docs/kafka.md.
 */
export const GROUP_SESSION_TIMEOUT_MS = 10_000
export const GROUP_HEARTBEAT_INTERVAL_MS = 3_000

export interface BatchConsumerOptions {
  groupId: string
  topics: string[]
  /** Where a new group starts. Pipelines read from the beginning so nothing is skipped. */
  fromBeginning?: boolean
  /** Partitions handled in parallel by this member. */
  partitionsConsumedConcurrently?: number
  sessionTimeoutMs?: number
  heartbeatIntervalMs?: number
  maxBytesPerPartition?: number
  /** Upper bound of one fetch over all partitions (kafkajs default 10 MiB). */
  maxBytes?: number
  /** Long-poll time of an empty fetch; also how long a stop may wait for it. */
  maxWaitTimeMs?: number
  /**
   * The broker answers a fetch once this many bytes are there (or maxWaitTimeMs passed); kafkajs
   * default 1 byte. More makes fewer, larger fetch rounds at a trickle.
   */
  minBytes?: number
  /** First pause before a restart after a crash; doubles per consecutive crash up to the max. */
  restartInitialMs?: number
  restartMaxMs?: number
  /** Crashes and restarts are logged here (warn / info); silent when omitted. */
  log?: ConsumerLog
  /** Called on each crash, e.g. to count restarts in a metric. */
  onRestart?: (error: Error, delayMs: number) => void
  /**
   * Processes the whole batch durably, or throws. Offsets are committed only after it
   * resolves, so a crash or an error redelivers the batch: the handler must be idempotent.
   *
   * Or it resolves to a DeferredCommit as soon as it has the batch in hand: the fetcher goes on
   * at once, and the batch's offsets are committed once `stored` resolved, for each partition in
   * the order its batches came (never past a batch not yet stored). The handler bounds how much
   * it holds (it resolves later while too much is pending). A deferred commit is dropped when
   * its partition was revoked meanwhile or this kafkajs consumer was replaced after a crash:
   * the next owner re-reads from the last commit, so such batches are redelivered.
   */
  handleBatch(batch: PartitionBatch): Promise<void | DeferredCommit>
}

export interface BatchConsumer {
  readonly id: string
  start(): Promise<void>
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
  /** Crashes since start (each followed by a restart unless stopped). */
  crashes(): number
}

/** What createBatchConsumer returns: for handlers that defer their commits (DeferredCommit). */
export interface CommitDeferringConsumer extends BatchConsumer {
  /** Deferred commits not done yet (batches handed back but not yet stored, or being committed). */
  pendingCommits(): number
  /** Fetches nothing more until the next start (a shutdown, before the last commits). */
  pauseFetching(): void
}

type State = 'idle' | 'joining' | 'running' | 'restarting' | 'stopped'

/**
 * eachBatch with explicit commits of exactly what the handler finished, which restarts
 * itself after any crash. kafkajs restarts a consumer only after errors it deems retriable;
 * others ("Failed to find group coordinator" on a young broker, a broker restarted during a
 * join) leave it stopped for good while the process looks alive. Here kafkajs never restarts
 * by itself: every crash discards that kafkajs consumer and a new one joins the group after
 * a backoff (capped exponential, with jitter), with `/readyz` saying "restarting" meanwhile.
 * Committed offsets are the only state carried over, so nothing is skipped.
 */
export function createBatchConsumer(kafka: Kafka, options: BatchConsumerOptions): CommitDeferringConsumer {
  const initialMs = options.restartInitialMs ?? 500
  const maxMs = options.restartMaxMs ?? 15_000
  let state: State = 'idle'
  let detail = 'not started'
  let current: Consumer | undefined
  let restartTimer: NodeJS.Timeout | undefined
  let consecutiveCrashes = 0
  let crashCount = 0
  let pendingCommits = 0
  /** Per `topic/partition`: the end of its chain of commits, each after the previous one. */
  const commitChains = new Map<string, Promise<void>>()
  /** The partitions of the current consumer's last assignment, as `topic/partition`. */
  let assigned = new Set<string>()

  /**
   * Commits `offset` for its partition after every earlier batch of the partition was committed
   * (or dropped) and `stored` resolved. Deferred commits are dropped if the partition is no
   * longer this consumer's; a failed deferred commit is logged and left to the next one of the
   * partition (commits are cumulative), or to a redelivery.
   */
  function commitInOrder(
    consumer: Consumer,
    offset: { topic: string; partition: number; offset: string },
    stored: Promise<void>,
    deferred: boolean,
  ): Promise<void> {
    const key = `${offset.topic}/${offset.partition}`
    const previous = commitChains.get(key) ?? Promise.resolve()
    const done = previous.then(() => stored).then(async () => {
      if (!deferred) return consumer.commitOffsets([offset])
      if (consumer !== current || !assigned.has(key)) return
      await consumer.commitOffsets([offset]).catch((error: unknown) => {
        options.log?.warn({ groupId: options.groupId, partition: key, err: error instanceof Error ? error.message : String(error) }, 'deferred commit failed; the next commit of the partition covers it')
      })
    })
    // A rejected link rejects the links after it: a failure ends in a restart, not in a commit.
    commitChains.set(key, done)
    const forget = () => void (commitChains.get(key) === done && commitChains.delete(key))
    done.then(forget, forget)
    return done
  }

  async function launch(): Promise<void> {
    const consumer: Consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs ?? GROUP_SESSION_TIMEOUT_MS,
      heartbeatInterval: options.heartbeatIntervalMs ?? GROUP_HEARTBEAT_INTERVAL_MS,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 4 * 1024 * 1024,
      ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
      ...(options.maxWaitTimeMs === undefined ? {} : { maxWaitTimeInMs: options.maxWaitTimeMs }),
      ...(options.minBytes === undefined ? {} : { minBytes: options.minBytes }),
      allowAutoTopicCreation: false,
      // We restart ourselves, after every crash, with a fresh consumer (see above).
      retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 3_000, restartOnFailure: async () => false },
    })
    current = consumer
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      if (consumer !== current) return
      assigned = new Set(Object.entries(e.payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((p) => `${topic}/${p}`)))
      state = 'running'
      detail = 'member of group'
      if (consecutiveCrashes > 0) options.log?.info({ groupId: options.groupId }, 'consumer rejoined its group after a restart')
      consecutiveCrashes = 0
    })
    consumer.on(consumer.events.CRASH, (e) => {
      if (consumer !== current || state === 'stopped') return
      scheduleRestart(e.payload.error)
    })
    state = 'joining'
    detail = consecutiveCrashes > 0 ? `rejoining group after ${consecutiveCrashes} crash(es)` : 'joining group'
    await consumer.connect()
    await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? true })
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (batch.messages.length === 0) return
        const handled = await options.handleBatch({
          topic: batch.topic,
          partition: batch.partition,
          messages: batch.messages,
          heartbeat,
          isActive: () => isRunning() && !isStale(),
        })
        const last = batch.lastOffset()
        resolveOffset(last)
        const offset = { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }
        if (!handled) return commitInOrder(consumer, offset, Promise.resolve(), false)
        pendingCommits++
        commitInOrder(consumer, offset, handled.stored, true).then(
          () => void pendingCommits--,
          (error: unknown) => {
            pendingCommits--
            if (consumer === current && state !== 'stopped') scheduleRestart(error instanceof Error ? error : new Error(String(error)))
          },
        )
      },
    })
  }

  function scheduleRestart(error: Error): void {
    if (state === 'stopped' || restartTimer !== undefined) return
    crashCount++
    const exp = Math.min(maxMs, initialMs * 2 ** Math.min(consecutiveCrashes, 20))
    const delayMs = Math.round(exp / 2 + Math.random() * (exp / 2))
    consecutiveCrashes++
    state = 'restarting'
    detail = `restarting in ${delayMs} ms after a crash: ${error.message}`
    options.log?.warn({ groupId: options.groupId, err: error.message, delayMs, crashes: consecutiveCrashes }, 'consumer crashed; restarting')
    options.onRestart?.(error, delayMs)
    const crashed = current
    current = undefined
    assigned = new Set()
    restartTimer = setTimeout(() => {
      void (async () => {
        await crashed?.disconnect().catch(() => undefined)
        restartTimer = undefined
        if (state === 'stopped') return
        try {
          await launch()
        } catch (err) {
          scheduleRestart(err instanceof Error ? err : new Error(String(err)))
        }
      })()
    }, delayMs)
  }

  return {
    id: `kafka-consumer:${options.groupId}`,
    async start() {
      // A failure here (Kafka unreachable at start) is the caller's: the service does not start.
      await launch()
    },
    async stop() {
      state = 'stopped'
      detail = 'stopped'
      if (restartTimer) clearTimeout(restartTimer)
      restartTimer = undefined
      const consumer = current
      current = undefined
      await consumer?.disconnect()
    },
    health() {
      return { ok: state === 'running', detail: state === 'stopped' ? 'stopped' : detail }
    },
    crashes: () => crashCount,
    pendingCommits: () => pendingCommits,
    pauseFetching() {
      current?.pause(options.topics.map((topic) => ({ topic })))
    },
  }
}
