import { isbot } from 'isbot'
import { longestWindow, type Campaign } from '@clickjoin/campaigns'
import { generateClickId } from '@clickjoin/click-id'
import { FIELD_MAX_LENGTH, type ClickV1 } from '@clickjoin/contracts'
import type { IngestDeps } from '../app.ts'
import { anonymizeIp } from '../domain/client-ip.ts'
import { expandDestination, UnsafeDestinationError, type MacroValues } from '../domain/destination.ts'
import { truncateText } from '../domain/text.ts'
import type { TrackingQuery } from '../schemas/clicks.ts'

/** Parameters with a meaning of their own: never passed through to the destination. */
const RESERVED_PARAMS = new Set(['campaign', 'pub', 'sub1', 'sub2', 'sub3', 'sub4', 'sub5', 'src', 'cr', 'uid', 'format'])

export const CLICK_COOKIE = 'cj_cid'

export interface ClickRequest {
  campaign: Campaign
  params: TrackingQuery
  clickTs: number
  ip: string
  userAgent: string
  referer: string
  isBot: boolean
  passthrough: ReadonlyArray<readonly [string, string]>
  /** A visitor's tracking link: during a Kafka outage the click goes to the local journal. */
  browser?: boolean
}

/** A click that could not be recorded because of its parameters. */
export class ClickRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

/** A click event built from a request and not yet recorded. */
export interface PreparedClick {
  event: ClickV1
  /** Where the visitor goes. */
  location: string
  /** Enters the click in the duplicate-click window: call once it is recorded. */
  remember: () => void
}

export type ClickRecorder = ReturnType<typeof createClickRecorder>

/**
 * How a click is made and recorded, shared by the tracking-link routes (fastify's and the fast
 * path's, routes/fast-click.ts) and the S2S batch route.
 */
export function createClickRecorder(deps: Pick<IngestDeps, 'events' | 'duplicates' | 'keyring' | 'metrics' | 'clickIdempotency'>) {
  const { events, duplicates, keyring, metrics, clickIdempotency } = deps
  const clickPublished = metrics.publishedCounts.child({ kind: 'click' })

  /**
   * The click event of a request, where it sends the visitor, and how to enter it in the
   * duplicate-click window once it is recorded. Synchronous and without side effects: throws
   * ClickRefused for a click its parameters do not allow.
   */
  function prepare(click: ClickRequest): PreparedClick {
    const { campaign, params } = click
    const clickId = generateClickId(keyring, Date.now())
    const values: MacroValues = {
      click_id: clickId,
      campaign_id: campaign.id,
      pub: params.pub ?? '',
      sub1: params.sub1 ?? '',
      sub2: params.sub2 ?? '',
      sub3: params.sub3 ?? '',
      sub4: params.sub4 ?? '',
      sub5: params.sub5 ?? '',
      src: params.src ?? '',
      cr: params.cr ?? '',
    }
    let location: string
    try {
      location = expandDestination(campaign, values, click.passthrough)
    } catch (err) {
      if (err instanceof UnsafeDestinationError) throw new ClickRefused(400, 'unsafe_destination', err.message)
      throw err
    }
    if (location.length > FIELD_MAX_LENGTH.destination) {
      throw new ClickRefused(414, 'destination_too_long', `the destination URL would exceed ${FIELD_MAX_LENGTH.destination} characters`)
    }
    const duplicate = duplicates.check(campaign.id, click.ip, click.userAgent)
    const event: ClickV1 = {
      v: 1,
      click_id: clickId,
      ts: click.clickTs,
      campaign_id: campaign.id,
      publisher_id: params.pub ?? '',
      sub1: values.sub1,
      sub2: values.sub2,
      sub3: values.sub3,
      sub4: values.sub4,
      sub5: values.sub5,
      source: values.src,
      creative: values.cr,
      user_key: params.uid ?? '',
      ip: anonymizeIp(click.ip),
      user_agent: truncateText(click.userAgent, FIELD_MAX_LENGTH.userAgent),
      referer: truncateText(click.referer, FIELD_MAX_LENGTH.referer),
      destination: location,
      is_bot: click.isBot,
      is_duplicate: duplicate.duplicate,
      window_seconds: campaign.window_seconds,
      max_window_seconds: longestWindow(campaign),
    }
    return { event, location, remember: duplicate.remember }
  }

  /**
   * Publishes a prepared click; resolves once Kafka acknowledged it (or, for a visitor's click,
   * the journal has it on disk).
   */
  async function commit(prepared: PreparedClick, browser: boolean): Promise<void> {
    await events.click(prepared.event, { browser })
    // Only a recorded click counts for the window: a retry after a 503 is not a duplicate.
    prepared.remember()
    clickPublished()
  }

  return {
    prepare,
    commit,

    /** Builds the destination and publishes the click; resolves once it is recorded. */
    async record(click: ClickRequest): Promise<{ clickId: string; location: string }> {
      const prepared = prepare(click)
      await commit(prepared, click.browser === true)
      return { clickId: prepared.event.click_id, location: prepared.location }
    },

    /**
     * An S2S item with an idempotency key: the click first minted for the key, published unless
     * Kafka already acknowledged it (SPEC §2: a half-failed batch can be retried whole).
     */
    async recordIdempotent(click: ClickRequest, partnerId: string, key: string): Promise<{ clickId: string; location: string }> {
      const candidate = prepare(click)
      const remembered = await clickIdempotency.claim(partnerId, key, candidate)
      if (!remembered.recorded) {
        await events.click(remembered.event)
        clickPublished()
        await clickIdempotency.markRecorded(partnerId, key, remembered)
      }
      candidate.remember()
      return { clickId: remembered.event.click_id, location: remembered.location }
    },
  }
}

/**
 * isbot's pattern costs about 10 µs per user agent, and a tracking link sees the same few
 * thousand browsers over and over: remember the answers (bounded; forgotten all at once when full).
 */
export function cachedBotCheck(): (userAgent: string) => boolean {
  const answers = new Map<string, boolean>()
  return (userAgent) => {
    let bot = answers.get(userAgent)
    if (bot === undefined) {
      bot = isbot(userAgent)
      if (answers.size >= 10_000) answers.clear()
      answers.set(userAgent, bot)
    }
    return bot
  }
}

/** The request's own parameters other than the reserved ones, in order, repeats kept. */
export function passthroughParams(url: string): Array<readonly [string, string]> {
  const queryAt = url.indexOf('?')
  if (queryAt === -1) return []
  const params: Array<readonly [string, string]> = []
  for (const [name, value] of new URLSearchParams(url.slice(queryAt + 1))) {
    if (!RESERVED_PARAMS.has(name) && name !== '') params.push([name, value])
  }
  return params
}
