import { clickV1Contract } from './click.ts'
import { deadLetterV1Contract } from './dead-letter.ts'
import { postbackDeliveryV1Contract } from './delivery.ts'
import { outcomeV1Contract } from './outcome.ts'
import { postbackV1Contract } from './postback.ts'

/**
 * Base topic names; `clicks` and `conversions` are fixed by the spec. Every message is keyed
 * by its click ID, so a click and its conversions land on the same partition number (the two
 * topics have the same partition count) and one attributor instance sees both.
 */
const BASE_TOPIC_NAMES = {
  clicks: 'clicks',
  conversions: 'conversions',
  outcomes: 'outcomes',
  deadLetter: 'dead_letter',
  /** Every attempt of the dispatcher to call a publisher (SPEC §5b), for `postback_deliveries`. */
  deliveries: 'postback_deliveries',
} as const

export type TopicRole = keyof typeof BASE_TOPIC_NAMES
export type TopicNames = { readonly [R in TopicRole]: string }

/** What each topic carries. */
export const topicContracts = {
  clicks: clickV1Contract,
  conversions: postbackV1Contract,
  outcomes: outcomeV1Contract,
  deadLetter: deadLetterV1Contract,
  deliveries: postbackDeliveryV1Contract,
} as const

/**
 * The topic names, each with `prefix` in front as given (e.g. `test_3f2a_`), so tests and
 * environments can share a broker without sharing topics.
 */
export function topicNames(prefix = ''): TopicNames {
  // Kafka's own rule for topic names; the longest base name must still fit in 249.
  if (!/^[A-Za-z0-9._-]*$/.test(prefix) || prefix.length + 'postback_deliveries'.length > 249) {
    throw new RangeError(`topic prefix may use only A-Z a-z 0-9 . _ - and at most 230 characters, got "${prefix}"`)
  }
  return {
    clicks: prefix + BASE_TOPIC_NAMES.clicks,
    conversions: prefix + BASE_TOPIC_NAMES.conversions,
    outcomes: prefix + BASE_TOPIC_NAMES.outcomes,
    deadLetter: prefix + BASE_TOPIC_NAMES.deadLetter,
    deliveries: prefix + BASE_TOPIC_NAMES.deliveries,
  }
}
