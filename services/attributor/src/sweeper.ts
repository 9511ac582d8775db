import type { ConversionAttributor } from './attribution.ts'
import type { Log } from './consumer.ts'
import type { OutboxPublisher } from './outbox.ts'
import { parkedInOrder } from './planning.ts'
import { KEY_SHARDS } from './redis-state.ts'
import type { AttributorStore, ParkedEntry } from './store.ts'
import { decodeEvent, postbackV1Contract } from '@clickjoin/contracts'

export interface SweeperDeps {
  store: AttributorStore
  attributor: ConversionAttributor
  outbox: OutboxPublisher
  log: Log
}

export interface SweeperSettings {
  intervalMs: number
}

export interface Sweeper {
  start(): void
  stop(): Promise<void>
  health(): { ok: boolean; detail: string }
  /** One sweep of overdue parked postbacks (the timer calls it too). */
  sweepOverdue(): Promise<number>
}

const SWEEP_PAGE = 500
/** An outbox entry this old is no longer being published by the member that wrote it. */
const ABANDONED_AFTER_MS = 10_000
/** How often the shards' outboxes are looked through for abandoned entries. */
const DRAIN_EVERY_MS = 1_000

/**
 * The timer side of the attributor: decides parked postbacks whose grace period ended
 * (`unknown_click`, unless the click turned up in the meantime) and publishes outbox entries a
 * crashed member left behind.
 */
export function createSweeper(deps: SweeperDeps, settings: SweeperSettings): Sweeper {
  const { store, attributor, outbox, log } = deps
  let timer: NodeJS.Timeout | undefined
  let running: Promise<unknown> = Promise.resolve()
  let lastError: string | undefined
  let stopped = false
  let lastDrainMs = 0

  async function sweepOverdue(): Promise<number> {
    const due = await store.overdue(Date.now(), SWEEP_PAGE)
    if (due.length === 0) return 0
    const parked = await store.readParked(due)
    const orphans: string[] = []
    const stored: ParkedEntry[] = []
    due.forEach((member, i) => {
      const entry = parked[i]
      if (entry === undefined || !decodeEvent(postbackV1Contract, entry.json).ok) orphans.push(member)
      else stored.push(entry)
    })
    const candidates = parkedInOrder(stored)
    if (orphans.length > 0) {
      log.error({ orphans: orphans.length }, 'parked entries without a readable postback; removing them')
      await store.forgetDue(orphans)
    }
    await outbox.publish(await attributor.attribute(candidates))
    return candidates.length
  }

  /**
   * Leftovers of a member that crashed between its Lua step and the Kafka ack. Only entries
   * older than ABANDONED_AFTER_MS: younger ones are still being published by their writer, and
   * taking them too would only publish them twice.
   */
  async function drainAbandonedOutboxes(): Promise<void> {
    const outboxKeys = Array.from({ length: KEY_SHARDS }, (_, shard) => store.keys.outbox(shard))
    await Promise.all(outboxKeys.map((key) => outbox.drain(key, { olderThanMs: ABANDONED_AFTER_MS })))
  }

  function schedule(): void {
    if (stopped) return
    timer = setTimeout(() => {
      running = (async () => {
        try {
          while ((await sweepOverdue()) >= SWEEP_PAGE && !stopped) {
            // a backlog: keep going before sleeping
          }
          if (Date.now() - lastDrainMs >= DRAIN_EVERY_MS) {
            await drainAbandonedOutboxes()
            lastDrainMs = Date.now()
          }
          lastError = undefined
        } catch (err) {
          lastError = err instanceof Error ? err.message : String(err)
          log.error({ err }, 'sweep failed; retrying')
        }
      })().finally(schedule)
    }, settings.intervalMs)
  }

  return {
    start() {
      stopped = false
      schedule()
    },
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      await running
    },
    health: () => (lastError ? { ok: false, detail: `sweeper: ${lastError}` } : { ok: true, detail: 'sweeping' }),
    sweepOverdue,
  }
}
