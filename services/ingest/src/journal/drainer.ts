import type { EventProducer } from '@clickjoin/kafka'
import type { Component } from '@clickjoin/service-runtime'
import type { Journal } from './journal.ts'

export interface JournalDrainerOptions {
  journal: Journal
  producer: EventProducer
  /** Records and bytes per produce call (below the broker's 1 MB request limit per partition). */
  maxChunkRecords?: number
  maxChunkBytes?: number
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void }
  onDelivered?: (events: number) => void
}

/**
 * Delivers the journal to Kafka in append order: one chunk at a time, the same chunk again
 * until Kafka acknowledges it (backoff 200 ms doubling to 5 s), then the checkpoint moves.
 * A crash between the acknowledgement and the checkpoint delivers that chunk again after the
 * restart (same events, same IDs: consumers keep one of each).
 */
export function createJournalDrainer(options: JournalDrainerOptions): Component {
  const { journal, producer, log } = options
  const maxRecords = options.maxChunkRecords ?? 2_000
  const maxBytes = options.maxChunkBytes ?? 512 * 1024
  let stopping = false
  let running: Promise<void> | undefined
  let wakeSleep: (() => void) | undefined
  let failingSince: number | undefined
  let lastFailure = ''

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      wakeSleep = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  async function deliverAll(): Promise<void> {
    while (!stopping) {
      const chunk = await journal.read(maxRecords, maxBytes)
      if (!chunk) {
        await Promise.race([journal.appended(), new Promise<void>((resolve) => (wakeSleep = resolve))])
        continue
      }
      let backoffMs = 200
      for (;;) {
        try {
          await producer.sendInOrder(chunk.records.map((r) => ({ topic: r.topic, message: { key: r.key, value: r.value } })))
          break
        } catch (err) {
          if (failingSince === undefined) {
            failingSince = Date.now()
            log.warn({ err, events: journal.stats().events }, 'journal: Kafka unavailable, events wait on disk')
          }
          lastFailure = err instanceof Error ? err.message : String(err)
          if (stopping) return
          await sleep(backoffMs)
          if (stopping) return
          backoffMs = Math.min(backoffMs * 2, 5_000)
        }
      }
      await journal.markDelivered(chunk)
      options.onDelivered?.(chunk.records.length)
      if (failingSince !== undefined) {
        log.info({ outageMs: Date.now() - failingSince }, 'journal: Kafka acknowledges again, delivering the journal')
        failingSince = undefined
      }
      if (journal.stats().events === 0 && !journal.hasUndelivered()) log.info({}, 'journal: delivered everything')
    }
  }

  return {
    id: 'journal-drainer',
    async start() {
      stopping = false
      running = deliverAll().catch((err: unknown) => {
        // A read error means the disk is failing: say so loudly; /readyz turns not ready.
        lastFailure = `stopped: ${err instanceof Error ? err.message : String(err)}`
        log.error({ err }, 'journal drainer stopped')
        failingSince ??= Date.now()
      })
    },
    async stop() {
      stopping = true
      wakeSleep?.()
      await running
    },
    health() {
      const { events } = journal.stats()
      if (lastFailure.startsWith('stopped:')) return { ok: false, detail: lastFailure }
      if (failingSince !== undefined) {
        return { ok: true, detail: `Kafka unavailable for ${Math.round((Date.now() - failingSince) / 1000)} s (${lastFailure}); ${events} events wait` }
      }
      return { ok: true, detail: events > 0 ? `delivering ${events} events` : 'idle' }
    },
  }
}
