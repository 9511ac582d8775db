import { wellFormed } from './text.ts'

/** The request values a destination template can use, by macro name. */
export interface MacroValues {
  click_id: string
  campaign_id: string
  pub: string
  sub1: string
  sub2: string
  sub3: string
  sub4: string
  sub5: string
  src: string
  cr: string
}

export interface DestinationTemplate {
  destination: string
  click_id_param: string
  passthrough: boolean
}

const MACRO = /\{(click_id|campaign_id|pub|sub[1-5]|src|cr)\}/g

/**
 * Whether the template's scheme://host:port is fixed text. A macro there would let a request
 * parameter choose the host, so such templates are refused (admin API) and never expanded.
 */
export function templateHostIsFixed(template: string): boolean {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(template)
  return authority !== null && !/[{}]/.test(authority[0])
}

export class UnsafeDestinationError extends Error {
  override readonly name = 'UnsafeDestinationError'
}

/**
 * The redirect target for one click: macros replaced by their URL-encoded values, the click ID
 * appended as `click_id_param` when the template does not place it, and (when the campaign
 * allows it) the request's other parameters passed through. Only ever the configured host:
 * every value is encodeURIComponent'd, so it cannot leave its path/query slot, and the final
 * origin is checked against the template's anyway.
 */
export function expandDestination(
  campaign: DestinationTemplate,
  values: MacroValues,
  passthroughParams: ReadonlyArray<readonly [string, string]> = [],
): string {
  const template = campaign.destination
  let placedClickId = false
  let url = template.replace(MACRO, (_match, name: keyof MacroValues) => {
    if (name === 'click_id') placedClickId = true
    return encodeURIComponent(wellFormed(values[name]))
  })
  const extra: Array<readonly [string, string]> = []
  if (!placedClickId) extra.push([campaign.click_id_param, values.click_id])
  if (campaign.passthrough) extra.push(...passthroughParams)
  if (extra.length > 0) url = appendQuery(url, extra)

  const final = parseHttpUrl(url)
  const expected = templateOrigin(template)
  if (final === undefined || expected === undefined || final.origin !== expected) {
    throw new UnsafeDestinationError('the destination would leave the campaign host')
  }
  return final.href
}

/** Adds parameters at the end of the query, before any fragment, without re-encoding the rest. */
function appendQuery(url: string, params: ReadonlyArray<readonly [string, string]>): string {
  const hashAt = url.indexOf('#')
  const base = hashAt === -1 ? url : url.slice(0, hashAt)
  const fragment = hashAt === -1 ? '' : url.slice(hashAt)
  const query = params.map(([k, v]) => `${encodeURIComponent(wellFormed(k))}=${encodeURIComponent(wellFormed(v))}`).join('&')
  const separator = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&'
  return `${base}${separator}${query}${fragment}`
}

const origins = new Map<string, string | undefined>()

/** The origin the template names, with macros blanked (cached: templates are few). */
function templateOrigin(template: string): string | undefined {
  let origin = origins.get(template)
  if (origin === undefined && !origins.has(template)) {
    origin = !templateHostIsFixed(template) ? undefined : parseHttpUrl(template.replace(MACRO, ''))?.origin
    if (origins.size > 10_000) origins.clear()
    origins.set(template, origin)
  }
  return origin
}

function parseHttpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}
