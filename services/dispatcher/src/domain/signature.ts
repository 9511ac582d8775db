import { createHmac } from 'node:crypto'

/**
 * Standard Webhooks 1.0 headers (SPEC §5b): `webhook-id` stays the same on every retry so the
 * receiver can deduplicate; the timestamp is the attempt's, so receivers that refuse stale
 * calls accept a retry days later; the signature is HMAC-SHA256 with the decoded `whsec_`
 * key over `<id>.<timestamp>.<body>`, present only when the publisher has a secret.
 */
export function webhookHeaders(options: {
  webhookId: string
  timestampSeconds: number
  body: string
  key: Buffer | undefined
}): Record<string, string> {
  const headers: Record<string, string> = {
    'webhook-id': options.webhookId,
    'webhook-timestamp': String(options.timestampSeconds),
  }
  if (options.key !== undefined) {
    const signature = createHmac('sha256', options.key)
      .update(`${options.webhookId}.${options.timestampSeconds}.${options.body}`)
      .digest('base64')
    headers['webhook-signature'] = `v1,${signature}`
  }
  return headers
}
