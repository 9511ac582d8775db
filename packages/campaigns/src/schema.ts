import { Type, type Static } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { FixedUrl, UrlTemplate, urlTemplateProblem } from './url.ts'

/** Default attribution window: 30 days (SPEC §4). */
export const DEFAULT_WINDOW_SECONDS = 2_592_000

const Id = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: '1–64 characters A–Z a–z 0–9 _ -' })
const HttpUrl = UrlTemplate
/**
 * A stored campaign's URL is read as any text: input is checked (UrlTemplate) when it is
 * written, and a campaign stored before a rule was tightened must keep being served, not vanish.
 */
const StoredUrl = Type.String({ maxLength: 4096 })
const EventName = Type.String({ pattern: '^[a-z0-9_]{1,32}$', description: 'an event name as postbacks send it: 1–32 characters a–z 0–9 _' })
const Amount = Type.String({ pattern: '^(0|[1-9][0-9]{0,11})(\\.[0-9]{1,6})?$', description: 'a decimal ≥ 0, up to 6 fraction digits' })
const Percent = Type.String({ pattern: '^(100(\\.0{1,6})?|[0-9]{1,2}(\\.[0-9]{1,6})?)$', description: 'a percentage 0–100, up to 6 fraction digits' })
const WindowSeconds = Type.Integer({ minimum: 1, maximum: 31_536_000 * 5 })

export const Payout = Type.Union([
  Type.Object({ type: Type.Literal('cpa'), amount: Amount }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('revshare'), percent: Percent }, { additionalProperties: false }),
])
export type Payout = Static<typeof Payout>

export const EventRule = Type.Object(
  {
    window_seconds: Type.Optional(WindowSeconds),
    payout: Type.Optional(Payout),
    /** Every postback of a repeatable event is its own conversion (no (click, event) dedup). */
    repeatable: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
)
export type EventRule = Static<typeof EventRule>

/** The body of `PUT /admin/campaigns/:id` (SPEC §4): optional fields take the defaults below. */
export const CampaignInput = Type.Object(
  {
    /** Landing URL template with macros such as {click_id}, {pub}, {sub1}. */
    destination: HttpUrl,
    status: Type.Union([Type.Literal('active'), Type.Literal('paused')]),
    fallback_url: Type.Optional(FixedUrl),
    click_id_param: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' })),
    window_seconds: Type.Optional(WindowSeconds),
    currency: Type.Optional(Type.String({ pattern: '^[A-Z]{3}$', description: 'an ISO 4217 code' })),
    payout: Type.Optional(Payout),
    passthrough: Type.Optional(Type.Boolean()),
    pixel_enabled: Type.Optional(Type.Boolean()),
    /** Per-event rules; only names a postback can send (SPEC §3 `event`), so every rule can apply. */
    events: Type.Optional(
      // propertyNames, not patternProperties: the OpenAPI 3.0 document keeps it (patternProperties
      // is turned into "any key"), so clients and schemathesis see which names are allowed.
      Type.Unsafe<Record<string, EventRule>>({
        type: 'object',
        propertyNames: { ...EventName },
        additionalProperties: EventRule,
        maxProperties: 256,
        description: 'rules per event name (the names postbacks send)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type CampaignInput = Static<typeof CampaignInput>

/** The body of `PATCH /admin/campaigns/:id`: the same fields, each optional; only those given change. */
export const CampaignPatch = Type.Partial(CampaignInput, { additionalProperties: false })
export type CampaignPatch = Static<typeof CampaignPatch>

/**
 * What the JSON schema cannot say about a campaign's fields, as `field: problem`, or undefined:
 * URLs must parse with a host and keep macros out of scheme://host:port; a fallback URL takes
 * no macros at all (it is used as is).
 */
export function campaignInputProblem(input: CampaignPatch): string | undefined {
  if (input.destination !== undefined) {
    const problem = urlTemplateProblem(input.destination)
    if (problem) return `destination: ${problem}`
  }
  if (input.fallback_url !== undefined) {
    if (/[{}]/.test(input.fallback_url)) return 'fallback_url: must not contain macros'
    const problem = urlTemplateProblem(input.fallback_url)
    if (problem) return `fallback_url: ${problem}`
  }
  return undefined
}

/** A stored campaign as the input that would store it again: the base a PATCH applies to. */
export function campaignInputOf(campaign: Campaign): CampaignInput {
  return {
    destination: campaign.destination,
    status: campaign.status,
    ...(campaign.fallback_url === null ? {} : { fallback_url: campaign.fallback_url }),
    click_id_param: campaign.click_id_param,
    window_seconds: campaign.window_seconds,
    currency: campaign.currency,
    ...(campaign.payout === null ? {} : { payout: campaign.payout }),
    passthrough: campaign.passthrough,
    pixel_enabled: campaign.pixel_enabled,
    events: campaign.events,
  }
}

/** A stored campaign: every default applied, so readers never guess. */
export const Campaign = Type.Object({
  id: Id,
  destination: StoredUrl,
  status: Type.Union([Type.Literal('active'), Type.Literal('paused')]),
  fallback_url: Type.Union([StoredUrl, Type.Null()]),
  click_id_param: Type.String(),
  window_seconds: WindowSeconds,
  currency: Type.String(),
  payout: Type.Union([Payout, Type.Null()]),
  passthrough: Type.Boolean(),
  pixel_enabled: Type.Boolean(),
  events: Type.Record(Type.String(), EventRule),
  updated_at: Type.Integer(),
})
export type Campaign = Static<typeof Campaign>

const IPV4 = '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}'
/** An IP address or CIDR range, as the document can say it; the route checks IPv6 exactly. */
const AllowListEntry = Type.Union(
  [
    Type.String({ pattern: `^${IPV4}(/([0-9]|[12][0-9]|3[0-2]))?$` }),
    Type.String({ format: 'ipv6', maxLength: 45 }),
    Type.String({
      pattern: '^(([0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(([0-9A-Fa-f]{1,4}:){0,3}[0-9A-Fa-f]{1,4})?::(([0-9A-Fa-f]{1,4}:){0,2}[0-9A-Fa-f]{1,4})?)/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$',
    }),
  ],
  { description: 'an IPv4 or IPv6 address or CIDR range' },
)

/** The body of `PUT /admin/partners/:id`. */
export const PartnerInput = Type.Object(
  {
    secret: Type.String({ minLength: 8, maxLength: 256 }),
    ip_allowlist: Type.Optional(Type.Array(AllowListEntry, { maxItems: 256 })),
  },
  { additionalProperties: false },
)
export type PartnerInput = Static<typeof PartnerInput>

export const Partner = Type.Object({
  id: Id,
  secret: Type.String(),
  ip_allowlist: Type.Array(Type.String()),
  updated_at: Type.Integer(),
})
export type Partner = Static<typeof Partner>

export const campaignIdPattern = new RegExp(Id.pattern!)

export function campaignFromInput(id: string, input: CampaignInput, nowMs = Date.now()): Campaign {
  return {
    id,
    destination: input.destination,
    status: input.status,
    fallback_url: input.fallback_url ?? null,
    click_id_param: input.click_id_param ?? 'click_id',
    window_seconds: input.window_seconds ?? DEFAULT_WINDOW_SECONDS,
    currency: input.currency ?? 'USD',
    payout: input.payout ?? null,
    passthrough: input.passthrough ?? false,
    pixel_enabled: input.pixel_enabled ?? false,
    events: input.events ?? {},
    updated_at: nowMs,
  }
}

export function partnerFromInput(id: string, input: PartnerInput, nowMs = Date.now()): Partner {
  return { id, secret: input.secret, ip_allowlist: input.ip_allowlist ?? [], updated_at: nowMs }
}

/** The window a conversion of `event` joins within: the event's own, else the campaign's. */
export function windowFor(campaign: Campaign, event: string): number {
  return campaign.events[event]?.window_seconds ?? campaign.window_seconds
}

/** The longest window any conversion of this campaign can have: how long a click must be kept. */
export function longestWindow(campaign: Campaign): number {
  return Math.max(campaign.window_seconds, ...Object.values(campaign.events).map((e) => e.window_seconds ?? 0))
}

export const campaignChecker = TypeCompiler.Compile(Campaign)
export const partnerChecker = TypeCompiler.Compile(Partner)
