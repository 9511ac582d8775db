import {
  clickV1Contract,
  deadLetterV1Contract,
  type DeadLetterV1,
  outcomeV1Contract,
  postbackDeliveryV1Contract,
  postbackV1Contract,
  type ClickV1,
  type EventContract,
  type OutcomeV1,
  type PostbackDeliveryV1,
  type PostbackV1,
  type TopicNames,
} from '@clickjoin/contracts'

/** The tables the sink fills from topics; one topic each. */
export type SinkTable = 'clicks' | 'postbacks' | 'conversions' | 'postback_deliveries' | 'dead_letters'

/** A valid event that a column cannot hold: it goes to the dead-letter topic, not into a retry loop. */
export class UnstorableEventError extends Error {
  override readonly name = 'UnstorableEventError'
}

// DateTime64(3) holds 1900-01-01 … 2299-12-31; the contracts allow any epoch ms ≥ 0.
const LATEST_STORABLE_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999)

/**
 * Epoch milliseconds as ClickHouse reads them into DateTime64(3, 'UTC') with
 * date_time_input_format=best_effort (which insertRows always sets). A value the column
 * cannot hold would fail the whole insert forever, so it is refused here instead.
 */
function utcTimestamp(epochMs: number): string {
  if (epochMs > LATEST_STORABLE_MS) {
    throw new UnstorableEventError(`timestamp ${epochMs} ms is after 2299-12-31, outside DateTime64(3)`)
  }
  return new Date(epochMs).toISOString()
}

// Named columns only: contracts tolerate unknown extra fields, which must not reach INSERT.
export function clickRow(click: ClickV1) {
  return {
    click_id: click.click_id,
    ts: utcTimestamp(click.ts),
    campaign_id: click.campaign_id,
    publisher_id: click.publisher_id,
    sub1: click.sub1,
    sub2: click.sub2,
    sub3: click.sub3,
    sub4: click.sub4,
    sub5: click.sub5,
    source: click.source,
    creative: click.creative,
    user_key: click.user_key,
    ip: click.ip,
    user_agent: click.user_agent,
    referer: click.referer,
    destination: click.destination,
    is_bot: click.is_bot ? 1 : 0,
    is_duplicate: click.is_duplicate ? 1 : 0,
    window_seconds: click.window_seconds,
    max_window_seconds: click.max_window_seconds,
  }
}

export function postbackRow(postback: PostbackV1) {
  return {
    postback_id: postback.postback_id,
    received_at: utcTimestamp(postback.received_at),
    channel: postback.channel,
    partner_id: postback.partner_id,
    click_id: postback.click_id,
    event: postback.event,
    txn_id: postback.txn_id,
    revenue: postback.revenue,
    currency: postback.currency,
    status: postback.status,
    conversion_ts: utcTimestamp(postback.conversion_ts),
  }
}

export function conversionRow(outcome: OutcomeV1) {
  return {
    conversion_id: outcome.conversion_id,
    version: outcome.version,
    postback_id: outcome.postback_id,
    click_id: outcome.click_id,
    partner_id: outcome.partner_id,
    event: outcome.event,
    txn_id: outcome.txn_id,
    status: outcome.status,
    outcome: outcome.outcome,
    reason: outcome.reason,
    campaign_id: outcome.campaign_id,
    publisher_id: outcome.publisher_id,
    sub1: outcome.sub1,
    sub2: outcome.sub2,
    sub3: outcome.sub3,
    sub4: outcome.sub4,
    sub5: outcome.sub5,
    click_ts: utcTimestamp(outcome.click_ts),
    conversion_ts: utcTimestamp(outcome.conversion_ts),
    ctit_ms: outcome.ctit_ms,
    revenue: outcome.revenue,
    payout: outcome.payout,
    currency: outcome.currency,
    is_fast: outcome.is_fast ? 1 : 0,
    updated_at: utcTimestamp(outcome.updated_at),
  }
}

export function deliveryRow(delivery: PostbackDeliveryV1) {
  return {
    delivery_id: delivery.delivery_id,
    job_id: delivery.job_id,
    webhook_id: delivery.webhook_id,
    conversion_id: delivery.conversion_id,
    version: delivery.version,
    publisher_id: delivery.publisher_id,
    campaign_id: delivery.campaign_id,
    url: delivery.url,
    method: delivery.method,
    attempt: delivery.attempt,
    status_code: delivery.status_code,
    duration_ms: Math.min(delivery.duration_ms, 4_294_967_295),
    error: delivery.error,
    state: delivery.state,
    sent_at: utcTimestamp(delivery.sent_at),
    next_attempt_at: utcTimestamp(delivery.next_attempt_at),
  }
}

export function deadLetterRow(deadLetter: DeadLetterV1) {
  return {
    received_at: utcTimestamp(deadLetter.failed_at),
    source_topic: deadLetter.source_topic,
    partition: deadLetter.partition,
    offset: deadLetter.offset,
    key: deadLetter.key,
    reason: deadLetter.reason,
    payload: deadLetter.payload,
    payload_encoding: deadLetter.payload_encoding,
  }
}

/** How one topic becomes rows of one table. */
export interface TopicTable<T = unknown> {
  topic: string
  table: SinkTable
  contract: EventContract
  toRow(event: T): object
}

function topicTable<T>(topic: string, table: SinkTable, contract: EventContract, toRow: (event: T) => object): TopicTable {
  return { topic, table, contract, toRow: toRow as (event: unknown) => object }
}

/** The sink's inputs: clicks → clicks, conversions (postbacks as received) → postbacks, outcomes → conversions. */
export function topicTables(topics: TopicNames): TopicTable[] {
  return [
    topicTable(topics.clicks, 'clicks', clickV1Contract, clickRow),
    topicTable(topics.conversions, 'postbacks', postbackV1Contract, postbackRow),
    topicTable(topics.outcomes, 'conversions', outcomeV1Contract, conversionRow),
    topicTable(topics.deliveries, 'postback_deliveries', postbackDeliveryV1Contract, deliveryRow),
    topicTable(topics.deadLetter, 'dead_letters', deadLetterV1Contract, deadLetterRow),
  ]
}
