import type { CampaignInput } from '@clickjoin/campaigns'
import { generateClickId } from '@clickjoin/click-id'
import { conversionPartitionKey, type ClickV1, type OutcomeV1, type PostbackV1 } from '@clickjoin/contracts'
import { createKafka, partitionOfKey } from '@clickjoin/kafka'
import {
  assertRepeatsIdentical,
  latestByConversion,
  makeClick,
  makePostback,
  readOutcomes,
  testKeyring,
  type createEventWriter,
  type TestWorld,
} from './harness.ts'

export const WORKLOAD_CAMPAIGN_ID = 'load'
export const workloadCampaign: CampaignInput = {
  destination: 'https://shop.example/',
  status: 'active',
  window_seconds: 3_600,
  currency: 'EUR',
  payout: { type: 'cpa', amount: '1.5' },
  events: { purchase: { payout: { type: 'revshare', percent: '10' } }, level: { repeatable: true } },
}

/** What the latest version of a conversion must say, whatever crashed on the way. */
export type ExpectedOutcome = Pick<OutcomeV1, 'version' | 'status' | 'outcome' | 'reason' | 'payout'>

export interface WorkloadChunk {
  clicks: ClickV1[]
  postbacks: PostbackV1[]
  /** Clicks sent after their conversions: the conversions wait for them. */
  lateClicks: ClickV1[]
}

export interface Workload {
  chunks: WorkloadChunk[]
  expected: Map<string, ExpectedOutcome>
  /** Per expected conversion: its chunk and the conversions-topic partition of its postbacks. */
  origin: Map<string, { chunk: number; partitionKey: string }>
  postbackCount: number
}

const attributed = (payout: string, version = 1, status: OutcomeV1['status'] = 'approved'): ExpectedOutcome => ({
  version,
  status,
  outcome: 'attributed',
  reason: '',
  payout,
})
const rejected = (reason: OutcomeV1['reason']): ExpectedOutcome => ({ version: 1, status: 'approved', outcome: 'rejected', reason, payout: '0' })

/**
 * `conversions` conversions of every kind SPEC §5 knows, cut into `chunkCount` chunks: plain
 * attributed ones, status updates, duplicates by (click, event) and by postback_id, repeatable
 * events, revshare, forged IDs, clicks that never come, expired ones and late clicks.
 */
export function buildWorkload(conversions: number, chunkCount: number): Workload {
  const expected = new Map<string, ExpectedOutcome>()
  const origin = new Map<string, { chunk: number; partitionKey: string }>()
  const chunks: WorkloadChunk[] = Array.from({ length: chunkCount }, () => ({ clicks: [], postbacks: [], lateClicks: [] }))
  const now = Date.now()
  let postbackCount = 0
  for (let i = 0; i < conversions; i++) {
    const chunkIndex = Math.floor((i * chunkCount) / conversions)
    const chunk = chunks[chunkIndex]!
    const click = makeClick(WORKLOAD_CAMPAIGN_ID, workloadCampaign, now - 60_000 - (i % 1000))
    const at = click.ts + 60_000
    const txn = `T-${i}`
    let partitionKey = ''
    const add = (...postbacks: PostbackV1[]) => {
      chunk.postbacks.push(...postbacks)
      postbackCount += postbacks.length
      partitionKey = conversionPartitionKey(postbacks[0]!)
    }
    const expect = (id: string, outcome: ExpectedOutcome) => {
      expected.set(id, outcome)
      origin.set(id, { chunk: chunkIndex, partitionKey })
    }
    const kind = i % 20
    if (kind <= 9) {
      add(makePostback(click.click_id, at, { txn_id: txn }))
      expect(`t:acme:${txn}`, attributed('1.5'))
    } else if (kind === 10) {
      add(makePostback(click.click_id, at, { txn_id: txn, status: 'pending' }), makePostback(click.click_id, at, { txn_id: txn }))
      expect(`t:acme:${txn}`, attributed('1.5', 2))
    } else if (kind === 11) {
      add(makePostback(click.click_id, at, { event: 'signup' }), makePostback(click.click_id, at + 1, { event: 'signup' }))
      expect(`e:signup:${click.click_id}`, attributed('1.5'))
    } else if (kind === 12) {
      const postback = makePostback(click.click_id, at, { event: 'level' })
      add(postback)
      expect(`p:${postback.postback_id}`, attributed('1.5'))
    } else if (kind === 13) {
      add(makePostback(click.click_id, at, { txn_id: txn, event: 'purchase', revenue: '10' }))
      expect(`t:acme:${txn}`, attributed('1'))
    } else if (kind === 14) {
      add(makePostback(`forged-${i}`, at, { txn_id: txn }))
      expect(`t:acme:${txn}`, rejected('invalid_click_id'))
    } else if (kind === 15) {
      add(makePostback(generateClickId(testKeyring, click.ts), at, { txn_id: txn }))
      expect(`t:acme:${txn}`, rejected('unknown_click'))
    } else if (kind === 16) {
      add(makePostback(click.click_id, click.ts + 7_200_000, { txn_id: txn }))
      expect(`t:acme:${txn}`, rejected('expired'))
    } else if (kind === 17) {
      const postback = makePostback(click.click_id, at, { txn_id: txn })
      add(postback, postback) // the producer wrote it twice
      expect(`t:acme:${txn}`, attributed('1.5'))
    } else if (kind === 18) {
      add(makePostback(click.click_id, at, { txn_id: txn }))
      chunk.lateClicks.push(click)
      expect(`t:acme:${txn}`, attributed('1.5'))
      continue
    } else {
      add(makePostback(click.click_id, at, { txn_id: txn }), makePostback(click.click_id, at, { txn_id: txn, status: 'rejected' }))
      expect(`t:acme:${txn}`, { ...attributed('0', 2, 'rejected') })
    }
    if (kind !== 14 && kind !== 15) chunk.clicks.push(click)
  }
  return { chunks, expected, origin, postbackCount }
}

export async function sendChunk(writer: Awaited<ReturnType<typeof createEventWriter>>, chunk: WorkloadChunk): Promise<void> {
  await writer.clicks(chunk.clicks)
  await writer.postbacks(chunk.postbacks)
  await writer.clicks(chunk.lateClicks)
}

/** Sum of the outcomes topic's high watermarks: cheap progress indicator. */
export async function outcomeCount(world: TestWorld): Promise<number> {
  const admin = createKafka({ brokers: world.brokers, clientId: 'attributor-test-progress', log: () => undefined }).admin()
  await admin.connect()
  try {
    const offsets = await admin.fetchTopicOffsets(world.topics.outcomes)
    return offsets.reduce((n, p) => n + Number(p.high), 0)
  } finally {
    await admin.disconnect()
  }
}

/**
 * Waits until every expected conversion reached its final version, then checks the result is
 * exactly the expected one: no conversion missing, none extra, none decided differently, and
 * every repeated message identical to the first.
 */
export async function verifyWorkload(world: TestWorld, workload: Workload, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const messages = await readOutcomes(world)
    const latest = latestByConversion(messages)
    const complete = [...workload.expected].every(([id, e]) => latest.get(id)?.version === e.version)
    if (complete || Date.now() > deadline) {
      const repeats = assertRepeatsIdentical(messages)
      const actual = new Map([...latest].map(([id, o]) => [id, pick(o)]))
      return { actual, repeats, messages: messages.length }
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}

/**
 * Where the wrong conversions are, for a failure message: counted by chunk, by the partition of
 * their postbacks and by how they are wrong (no outcome, an earlier version, another outcome). A
 * partition that stopped shows as one partition's conversions from some chunk on; a slow catch-up
 * as the last chunks' conversions on every partition.
 */
export function describeWrong(workload: Workload, wrong: ReturnType<typeof mismatches>, partitions: number): string {
  const counts = new Map<string, number>()
  for (const { id, expected, actual } of wrong) {
    const origin = workload.origin.get(id)
    const how = actual === undefined ? 'no outcome' : expected === undefined ? 'unexpected' : actual.version < expected.version ? `v${actual.version} of v${expected.version}` : 'differs'
    const where = origin === undefined ? 'not in the workload' : `chunk ${origin.chunk}, partition ${partitionOfKey(origin.partitionKey, partitions)}`
    const key = `${where}: ${how}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })).map(([key, n]) => `${key} × ${n}`).join('; ')
}

/** The conversions whose final outcome differs from the expected one (missing or extra included). */
export function mismatches(actual: Map<string, ExpectedOutcome>, expected: Map<string, ExpectedOutcome>) {
  const wrong: { id: string; expected: ExpectedOutcome | undefined; actual: ExpectedOutcome | undefined }[] = []
  for (const id of new Set([...actual.keys(), ...expected.keys()])) {
    const a = actual.get(id)
    const e = expected.get(id)
    if (JSON.stringify(a) !== JSON.stringify(e)) wrong.push({ id, expected: e, actual: a })
  }
  return wrong
}

function pick(o: OutcomeV1): ExpectedOutcome {
  return { version: o.version, status: o.status, outcome: o.outcome, reason: o.reason, payout: o.payout }
}
