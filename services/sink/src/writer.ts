import { createHash } from 'node:crypto'

/** Where a group of rows came from: one partition batch, a contiguous offset range. */
export interface OffsetRange {
  topic: string
  partition: number
  firstOffset: string
  lastOffset: string
}

export interface InsertBlock {
  table: string
  rows: object[]
  /** Sum of the source messages' sizes: what the insert roughly weighs. */
  bytes: number
  ranges: OffsetRange[]
  /** Derived from the offset ranges only, so a retry of this block carries the same one. */
  deduplicationToken: string
}

export interface BatchWriterOptions {
  /** An insert goes when a table's pending rows reach this count… */
  maxRows: number
  /** …or their bytes reach this… */
  maxBytes: number
  /** …or the oldest pending rows waited this long… */
  maxWaitMs: number
  /**
   * …or no new rows arrived for this long. 0 (the default): the event loop's next turn, when
   * every batch of the consumer's fetch round is in (kafkajs hands them over together), so the
   * round is inserted at once with no fixed wait; more only holds rows back (tests).
   */
  quietMs: number
  /**
   * A small round (under an eighth of maxBytes) is inserted no sooner than this after the
   * table's previous insert (0: no limit): at a trickle, the rounds that arrive meanwhile join
   * one insert instead of many tiny ones (each a part, a lookup and a merge later: CPU the
   * services beside the sink need). A bigger round — the sink is catching up — goes at once.
   * A function gives each table its own interval.
   */
  minIntervalMs?: number | ((table: string) => number)
  /** Longest pause between retries of a failed insert. */
  retryMaxBackoffMs: number
  insert(block: InsertBlock): Promise<void>
  onInserted?(block: InsertBlock, durationMs: number): void
  onInsertFailed?(block: InsertBlock, error: unknown, attempt: number, retryInMs: number): void
}

export interface BatchWriter {
  readonly id: string
  /**
   * Adds the rows of one offset range and resolves once ClickHouse acknowledged the insert
   * that holds them (never before: the caller commits the offsets after this). Failed
   * inserts are retried with backoff until they succeed; nothing is dropped.
   */
  write(table: string, range: OffsetRange, rows: object[], bytes: number): Promise<void>
  /** Sends every pending row now and waits for all inserts. */
  flush(): Promise<void>
  /** From now on every write is inserted at once, without waiting for more rows (shutdown). */
  stopBatching(): void
  /** Rows accepted but not yet acknowledged by ClickHouse. */
  pendingRows(): number
  health(): { ok: boolean; detail: string }
}

interface OpenBlock {
  table: string
  rows: object[]
  bytes: number
  ranges: OffsetRange[]
  waiters: { resolve(): void; reject(error: Error): void }[]
  maxWaitTimer: NodeJS.Timeout | undefined
  quietTimer: NodeJS.Timeout | undefined
  /** With no quiet wait: the end of the fetch round (the event loop's next turn). */
  roundEnd: NodeJS.Immediate | undefined
  /** The round ended while an insert of the table was running: decide once it is acknowledged. */
  roundEnded: boolean
}

interface TableQueue {
  open: OpenBlock | undefined
  /** performance.now() when this table's last insert was sealed. */
  lastSealedAt: number
  /** Sealed blocks of this table not yet acknowledged. */
  inserting: number
  /** The insert chain of this table: one insert at a time, in order. */
  tail: Promise<void>
}

/** A short token naming exactly the offset ranges of a block. */
export function deduplicationTokenFor(table: string, ranges: readonly OffsetRange[]): string {
  const names = ranges.map((r) => `${r.topic}/${r.partition}/${r.firstOffset}-${r.lastOffset}`).sort()
  const digest = createHash('sha256').update(names.join(',')).digest('hex').slice(0, 32)
  // Readable when it names one range (the common case under load), else a digest.
  return ranges.length === 1 ? `${table}:${names[0]}` : `${table}:${digest}`
}

/**
 * Collects the rows of partition batches per table and writes them as few large inserts.
 * Backpressure comes for free: write() does not resolve while ClickHouse is down, so the
 * consumer stops fetching and commits nothing, and retries go on with growing pauses.
 */
export function createBatchWriter(options: BatchWriterOptions): BatchWriter {
  const tables = new Map<string, TableQueue>()
  let pending = 0
  let failing: string | undefined
  let batching = true
  const minInterval = options.minIntervalMs ?? 0
  const minIntervalOf = typeof minInterval === 'number' ? () => minInterval : minInterval

  function queueFor(table: string): TableQueue {
    let queue = tables.get(table)
    if (!queue) tables.set(table, (queue = { open: undefined, lastSealedAt: -Infinity, inserting: 0, tail: Promise.resolve() }))
    return queue
  }

  async function insertUntilStored(block: InsertBlock): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const started = performance.now()
      try {
        await options.insert(block)
        failing = undefined
        options.onInserted?.(block, performance.now() - started)
        return
      } catch (error) {
        const backoff = Math.min(options.retryMaxBackoffMs, 100 * 2 ** Math.min(attempt - 1, 16))
        const retryInMs = Math.round(backoff / 2 + (Math.random() * backoff) / 2)
        failing = `insert into ${block.table} failing (attempt ${attempt}): ${error instanceof Error ? error.message : String(error)}`
        options.onInsertFailed?.(block, error, attempt, retryInMs)
        await new Promise((resolve) => setTimeout(resolve, retryInMs))
      }
    }
  }

  function clearQuiet(block: OpenBlock): void {
    clearTimeout(block.quietTimer)
    clearImmediate(block.roundEnd)
    block.quietTimer = undefined
    block.roundEnd = undefined
  }

  function seal(queue: TableQueue): Promise<void> {
    const block = queue.open
    if (!block) return queue.tail
    queue.open = undefined
    queue.lastSealedAt = performance.now()
    clearTimeout(block.maxWaitTimer)
    clearQuiet(block)
    const insertBlock: InsertBlock = {
      table: block.table,
      rows: block.rows,
      bytes: block.bytes,
      ranges: block.ranges,
      deduplicationToken: deduplicationTokenFor(block.table, block.ranges),
    }
    queue.inserting++
    queue.tail = queue.tail.then(async () => {
      await insertUntilStored(insertBlock)
      pending -= insertBlock.rows.length
      queue.inserting--
      for (const waiter of block.waiters) waiter.resolve()
      const next = queue.open
      if (queue.inserting === 0 && next?.roundEnded) endOfRound(queue, next)
    })
    return queue.tail
  }

  /**
   * A fetch round is in. While an insert of the table is running, the rounds arriving meanwhile
   * join one block that goes when it is acknowledged (under load: fewer, larger inserts, none
   * waiting in line). Otherwise insert now, or once the table's last insert is far enough back.
   */
  function endOfRound(queue: TableQueue, block: OpenBlock): void {
    block.roundEnd = undefined
    if (batching && queue.inserting > 0) {
      block.roundEnded = true
      return
    }
    const waitMs = minIntervalOf(block.table) - (performance.now() - queue.lastSealedAt)
    if (waitMs <= 0 || !batching || block.bytes >= options.maxBytes / 8) void seal(queue)
    else block.quietTimer ??= setTimeout(() => void seal(queue), waitMs)
  }

  return {
    id: 'clickhouse-writer',
    write(table, range, rows, bytes) {
      const queue = queueFor(table)
      const current = queue.open
      // A range is never split across inserts: its rows are stored together or not at all.
      if (current && (current.rows.length + rows.length > options.maxRows || current.bytes + bytes > options.maxBytes)) {
        void seal(queue)
      }
      const block = (queue.open ??= {
        table,
        rows: [],
        bytes: 0,
        ranges: [],
        waiters: [],
        maxWaitTimer: undefined,
        quietTimer: undefined,
        roundEnd: undefined,
        roundEnded: false,
      })
      for (const row of rows) block.rows.push(row)
      block.bytes += bytes
      block.ranges.push(range)
      pending += rows.length
      const stored = new Promise<void>((resolve, reject) => block.waiters.push({ resolve, reject }))
      if (!batching || block.rows.length >= options.maxRows || block.bytes >= options.maxBytes) {
        void seal(queue)
      } else {
        block.maxWaitTimer ??= setTimeout(() => void seal(queue), options.maxWaitMs)
        if (options.quietMs > 0) {
          clearQuiet(block)
          block.quietTimer = setTimeout(() => void seal(queue), options.quietMs)
        } else {
          if (!block.roundEnded) block.roundEnd ??= setImmediate(() => endOfRound(queue, block))
        }
      }
      return stored
    },
    async flush() {
      await Promise.all([...tables.values()].map((queue) => seal(queue)))
    },
    stopBatching() {
      batching = false
    },
    pendingRows: () => pending,
    health() {
      return failing ? { ok: false, detail: failing } : { ok: true, detail: `${pending} rows pending` }
    },
  }
}
