import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { topicNames, type ClickV1, type PostbackV1 } from '@clickjoin/contracts'
import { MessageWithdrawnError, type EventProducer, type OutgoingMessage } from '@clickjoin/kafka'
import { createJournal, type Journal } from '../journal/journal.ts'
import { createEventPublisher, KAFKA_SLOW_HOLD_MS, type JournalReason } from './events.ts'

// Which path a browser event takes (Kafka or the local journal), with a real journal on disk.
// The producer is a recorder whose answer each test chooses: this is the routing decision,
// not Kafka (the outage, SIGSTOP and replication tests cover the real broker).

const topics = topicNames('t_')
const click = (id: string): ClickV1 => ({
  v: 1,
  click_id: id,
  ts: 1_700_000_000_000,
  campaign_id: 'c',
  publisher_id: '',
  sub1: '',
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: '',
  source: '',
  creative: '',
  user_key: '',
  ip: '203.0.113.0',
  user_agent: 'Mozilla/5.0',
  referer: '',
  destination: `https://shop.example/?click_id=${id}`,
  is_bot: false,
  is_duplicate: false,
  window_seconds: 86_400,
  max_window_seconds: 86_400,
})
const pixel = (txn: string): PostbackV1 => ({
  v: 1,
  postback_id: `pb-${txn}`,
  received_at: 1_700_000_100_000,
  channel: 'pixel',
  partner_id: '',
  campaign_id: 'c',
  click_id: 'AQGMxUo1gAB3c2VjcmV0cmFuZG9tbWF',
  event: 'purchase',
  txn_id: txn,
  revenue: '1',
  currency: 'EUR',
  status: 'pending',
  conversion_ts: 1_700_000_090_000,
})

function recordingProducer(answer: () => Promise<void>) {
  const sent: string[] = []
  const producer: EventProducer = {
    id: 'kafka-producer',
    start: async () => undefined,
    send(_topic: string, message: OutgoingMessage) {
      sent.push(message.key)
      return answer()
    },
    sendInOrder: async () => undefined,
    flush: async () => undefined,
    stop: async () => undefined,
    health: () => ({ ok: true, detail: 'connected' }),
    stats: () => ({ messagesAcked: 0, messagesFailed: 0, batches: 0, produceRequests: 0 }),
  }
  return { producer, sent }
}

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

async function openJournal(): Promise<Journal> {
  const dir = await mkdtemp(path.join(tmpdir(), 'events-test-'))
  const journal = createJournal({ dir, maxBytes: 1024 ** 2, segmentBytes: 64 * 1024 })
  await journal.open()
  cleanup.push(() => rm(dir, { recursive: true, force: true }), () => journal.close())
  return journal
}

describe('browser events: Kafka or the journal', () => {
  it('a click goes to Kafka while the journal still holds undelivered events; a pixel follows the journal', async () => {
    const journal = await openJournal()
    await journal.append({ topic: topics.clicks, key: 'older', value: Buffer.from('{}') })
    const { producer, sent } = recordingProducer(() => Promise.resolve())
    const reasons: JournalReason[] = []
    const events = createEventPublisher(producer, topics, { journal, fallbackMs: 500, onJournaled: (r) => reasons.push(r) })

    await events.click(click('new-click'), { browser: true })
    expect(sent).toEqual(['new-click'])
    expect(journal.stats().events).toBe(1)

    await events.postback(pixel('o-1'))
    expect(sent).toEqual(['new-click'])
    expect(journal.stats().events).toBe(2)
    expect(reasons).toEqual(['backlog'])
  })

  it('after a fallback, the next browser events go to the journal without waiting, then Kafka again', async () => {
    const journal = await openJournal()
    let refuse = true
    const { producer, sent } = recordingProducer(() => (refuse ? Promise.reject(new MessageWithdrawnError('still queued')) : Promise.resolve()))
    const reasons: JournalReason[] = []
    let clock = 1_000
    const events = createEventPublisher(producer, topics, { journal, fallbackMs: 500, onJournaled: (r) => reasons.push(r), now: () => clock })

    await events.click(click('a'), { browser: true })
    refuse = false
    await events.click(click('b'), { browser: true })
    expect(sent).toEqual(['a'])
    expect(reasons).toEqual(['timeout', 'kafka_slow'])
    expect(journal.stats().events).toBe(2)

    clock += KAFKA_SLOW_HOLD_MS - 1
    await events.click(click('still-held'), { browser: true })
    expect(sent).toEqual(['a'])
    clock += 1
    await events.click(click('c'), { browser: true })
    expect(sent).toEqual(['a', 'c'])
    expect(journal.stats().events).toBe(3)
  })

  it('an S2S click never goes to the journal', async () => {
    const journal = await openJournal()
    const { producer } = recordingProducer(() => Promise.reject(new MessageWithdrawnError('still queued')))
    const events = createEventPublisher(producer, topics, { journal, fallbackMs: 500 })
    await expect(events.click(click('s2s'))).rejects.toBeInstanceOf(MessageWithdrawnError)
    expect(journal.stats().events).toBe(0)
  })
})
