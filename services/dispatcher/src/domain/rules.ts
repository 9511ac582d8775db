import type { PostbackRule, Publisher } from '@clickjoin/campaigns'
import type { OutcomeV1 } from '@clickjoin/contracts'

/**
 * Only attributed conversions reach publishers (SPEC §5b): a rejected outcome (unknown click,
 * forged click ID…) has no publisher to tell, or must not be told.
 */
export function isPublisherOutcome(outcome: OutcomeV1): boolean {
  return outcome.outcome === 'attributed' && outcome.publisher_id !== ''
}

/** Whether a rule wants this conversion version: event, status and campaign filters (SPEC §4). */
export function ruleMatches(rule: PostbackRule, outcome: OutcomeV1): boolean {
  return (
    (rule.events === null || rule.events.includes(outcome.event)) &&
    rule.statuses.includes(outcome.status) &&
    (rule.campaigns === null || rule.campaigns.includes(outcome.campaign_id))
  )
}

/** The publisher's rules to call for this outcome, with their position in the publisher's list. */
export function matchingRules(publisher: Publisher, outcome: OutcomeV1): Array<{ rule: PostbackRule; index: number }> {
  if (!isPublisherOutcome(outcome) || publisher.id !== outcome.publisher_id) return []
  return publisher.postbacks.flatMap((rule, index) => (ruleMatches(rule, outcome) ? [{ rule, index }] : []))
}
