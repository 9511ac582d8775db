import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { UrlTemplate, urlTemplateProblem } from './url.ts'

/** The publisher ID is the `pub` of clicks (SPEC §4); as a path segment it keeps to URL-safe characters. */
export const PublisherId = Type.String({
  pattern: '^[A-Za-z0-9_.~-]{1,128}$',
  description: '1–128 characters A–Z a–z 0–9 _ . ~ -',
})

const ConversionStatus = Type.Union([Type.Literal('approved'), Type.Literal('pending'), Type.Literal('rejected')])
export type PostbackStatus = Static<typeof ConversionStatus>

/** `whsec_` and the base64 of 16–128 random bytes, as Standard Webhooks libraries generate them. */
export const WebhookSecret = Type.String({
  // Canonical base64 of 16–128 bytes (k full groups of 3 bytes, then 0, 1 or 2 bytes whose unused
  // bits are zero), padding optional: exactly what webhookSecretKey accepts.
  pattern:
    '^whsec_(?:(?:[A-Za-z0-9+/]{4}){6,42}|(?:[A-Za-z0-9+/]{4}){5,42}(?:[A-Za-z0-9+/][AQgw](?:==)?|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=?))$',
  description: 'whsec_ followed by the base64 of 16–128 bytes',
})

const PostbackUrl = UrlTemplate

/** One postback rule of `PUT /admin/publishers/:id` (SPEC §4); absent filters take the defaults below. */
export const PostbackRuleInput = Type.Object(
  {
    /** URL template with macros such as {click_id}, {sub1}, {payout}, in the path, query or fragment. */
    url: PostbackUrl,
    method: Type.Optional(Type.Union([Type.Literal('GET'), Type.Literal('POST')])),
    /** Default: every event. */
    events: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9_]{1,32}$' }), { minItems: 1, maxItems: 64, uniqueItems: true })),
    /** Default: ["approved"]. */
    statuses: Type.Optional(Type.Array(ConversionStatus, { minItems: 1, maxItems: 3, uniqueItems: true })),
    /** Default: every campaign. */
    campaigns: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }), { minItems: 1, maxItems: 1024, uniqueItems: true })),
  },
  { additionalProperties: false },
)
export type PostbackRuleInput = Static<typeof PostbackRuleInput>

export const PublisherInput = Type.Object(
  {
    secret: Type.Optional(WebhookSecret),
    postbacks: Type.Array(PostbackRuleInput, { maxItems: 32 }),
  },
  { additionalProperties: false },
)
export type PublisherInput = Static<typeof PublisherInput>

/** A stored rule: every default applied; `null` filters match everything. */
export const PostbackRule = Type.Object({
  url: Type.String(),
  method: Type.Union([Type.Literal('GET'), Type.Literal('POST')]),
  events: Type.Union([Type.Array(Type.String()), Type.Null()]),
  statuses: Type.Array(ConversionStatus),
  campaigns: Type.Union([Type.Array(Type.String()), Type.Null()]),
})
export type PostbackRule = Static<typeof PostbackRule>

export const Publisher = Type.Object({
  id: Type.String(),
  /** The Standard Webhooks signing secret (`whsec_…`), or null: calls go unsigned. Never shown by the API. */
  secret: Type.Union([Type.String(), Type.Null()]),
  postbacks: Type.Array(PostbackRule),
  updated_at: Type.Integer(),
})
export type Publisher = Static<typeof Publisher>

export const DEFAULT_POSTBACK_STATUSES: readonly PostbackStatus[] = ['approved']

export function publisherFromInput(id: string, input: PublisherInput, nowMs = Date.now()): Publisher {
  return {
    id,
    secret: input.secret ?? null,
    postbacks: input.postbacks.map((rule) => ({
      url: rule.url,
      method: rule.method ?? 'GET',
      events: rule.events ?? null,
      statuses: rule.statuses ?? [...DEFAULT_POSTBACK_STATUSES],
      campaigns: rule.campaigns ?? null,
    })),
    updated_at: nowMs,
  }
}

/** Why a postback URL template is unacceptable (the same rules as every admin URL), or undefined. */
export const postbackUrlProblem = urlTemplateProblem

/** The signing key of a `whsec_` secret, or undefined when the base64 is malformed. */
export function webhookSecretKey(secret: string): Buffer | undefined {
  if (!secret.startsWith('whsec_')) return undefined
  const encoded = secret.slice('whsec_'.length)
  const key = Buffer.from(encoded, 'base64')
  // Round trip: Buffer.from ignores invalid characters instead of failing.
  if (key.length < 16 || key.toString('base64').replace(/=+$/, '') !== encoded.replace(/=+$/, '')) return undefined
  return key
}

export const publisherChecker = TypeCompiler.Compile(Publisher)
