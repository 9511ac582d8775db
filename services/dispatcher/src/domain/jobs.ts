import { createHash } from 'node:crypto'
import type { PostbackRule, Publisher } from '@clickjoin/campaigns'
import type { OutcomeV1 } from '@clickjoin/contracts'
import { expandPostbackUrl, postbackBody, postbackFields } from './macros.ts'
import { matchingRules } from './rules.ts'

/**
 * One pending call: a matching rule of a conversion version, kept in Redis until it is
 * delivered, refused or failed. Everything a retry needs is fixed when it is created (URL,
 * body, webhook-id), so every attempt sends the same request; only the timestamp and its
 * signature are the attempt's own.
 */
export interface DeliveryJob {
  job_id: string
  /** `<conversion_id>:<version>` (Standard Webhooks `webhook-id`). */
  webhook_id: string
  conversion_id: string
  version: number
  publisher_id: string
  campaign_id: string
  url: string
  method: 'GET' | 'POST'
  body: string
  created_at: number
  /** 0 until the first attempt; the retry period counts from it. */
  first_attempt_at: number
  /** Attempts made so far. */
  attempts: number
  state: 'pending' | 'delivered' | 'failed' | 'refused'
}

export function webhookId(outcome: Pick<OutcomeV1, 'conversion_id' | 'version'>): string {
  return `${outcome.conversion_id}:${outcome.version}`
}

/**
 * A rule's identity within a publisher, from what it calls: stable when rules are reordered
 * or others are added, so a redelivered outcome never creates a second job for the same call.
 */
function ruleKey(rule: PostbackRule): string {
  return createHash('sha256').update(`${rule.method} ${rule.url}`).digest('base64url').slice(0, 16)
}

/** The deliveries an outcome asks for: one per matching rule of its publisher (SPEC §5b). */
export function deliveryJobsFor(outcome: OutcomeV1, publisher: Publisher, nowMs: number): DeliveryJob[] {
  const fields = postbackFields(outcome)
  const id = webhookId(outcome)
  const seen = new Set<string>()
  return matchingRules(publisher, outcome).flatMap(({ rule }) => {
    const jobId = `${id}/${ruleKey(rule)}`
    if (seen.has(jobId)) return [] // the same URL and method twice: one call
    seen.add(jobId)
    return [
      {
        job_id: jobId,
        webhook_id: id,
        conversion_id: outcome.conversion_id,
        version: outcome.version,
        publisher_id: outcome.publisher_id,
        campaign_id: outcome.campaign_id,
        url: expandPostbackUrl(rule.url, fields),
        method: rule.method,
        body: postbackBody(rule.method, fields),
        created_at: nowMs,
        first_attempt_at: 0,
        attempts: 0,
        state: 'pending' as const,
      },
    ]
  })
}
