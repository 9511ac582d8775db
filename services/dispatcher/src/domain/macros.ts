import type { OutcomeV1 } from '@clickjoin/contracts'

/** What a publisher is told about a conversion version: the macro values, and the JSON body of a POST. */
export function postbackFields(outcome: OutcomeV1) {
  return {
    click_id: outcome.click_id,
    conversion_id: outcome.conversion_id,
    version: outcome.version,
    txn_id: outcome.txn_id,
    event: outcome.event,
    status: outcome.status,
    payout: outcome.payout,
    revenue: outcome.revenue,
    currency: outcome.currency,
    campaign_id: outcome.campaign_id,
    pub: outcome.publisher_id,
    sub1: outcome.sub1,
    sub2: outcome.sub2,
    sub3: outcome.sub3,
    sub4: outcome.sub4,
    sub5: outcome.sub5,
    /** Conversion time, unix seconds. */
    ts: Math.floor(outcome.conversion_ts / 1000),
  }
}
export type PostbackFields = ReturnType<typeof postbackFields>

const MACRO = /\{([a-z0-9_]+)\}/g

/**
 * The rule's URL with every known macro replaced by its URL-encoded value (SPEC §5b); an
 * unknown `{name}` stays as written, so a typo shows in the delivery log instead of vanishing.
 */
export function expandPostbackUrl(template: string, fields: PostbackFields): string {
  const values: Record<string, string> = {}
  for (const [name, value] of Object.entries(fields)) if (name !== 'version') values[name] = String(value)
  return template.replace(MACRO, (whole, name: string) => {
    const value = values[name]
    return value === undefined ? whole : encodeURIComponent(value)
  })
}

/** The request body: the fields as JSON for POST, empty for GET (also what is signed). */
export function postbackBody(method: 'GET' | 'POST', fields: PostbackFields): string {
  return method === 'POST' ? JSON.stringify(fields) : ''
}
