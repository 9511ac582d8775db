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
  const template = compiledTemplate(campaign.destination)
  let url = template.texts[0]!
  for (let i = 0; i < template.macros.length; i++) {
    url += encodeURIComponent(wellFormed(values[template.macros[i]!])) + template.texts[i + 1]!
  }
  const extra: Array<readonly [string, string]> = []
  if (!template.placesClickId) extra.push([campaign.click_id_param, values.click_id])
  if (campaign.passthrough) extra.push(...passthroughParams)
  if (extra.length > 0) url = appendQuery(url, extra)

  const final = parseHttpUrl(url)
  if (final === undefined || template.origin === undefined || final.origin !== template.origin) {
    throw new UnsafeDestinationError('the destination would leave the campaign host')
  }
  return final.href
}

/**
 * A template split once into its fixed texts and the macros between them (`texts` has one more
 * entry than `macros`), whether it places the click ID itself, and the origin it names with its
 * macros blanked (undefined when a macro could choose the host). Expanding is then a
 * concatenation instead of a pattern replace with a callback per click.
 */
interface CompiledTemplate {
  texts: string[]
  macros: Array<keyof MacroValues>
  placesClickId: boolean
  origin: string | undefined
}

const compiled = new Map<string, CompiledTemplate>()

/** The compiled form of a template (cached: templates are few). */
function compiledTemplate(template: string): CompiledTemplate {
  let entry = compiled.get(template)
  if (entry === undefined) {
    const texts: string[] = []
    const macros: Array<keyof MacroValues> = []
    let at = 0
    for (const match of template.matchAll(MACRO)) {
      texts.push(template.slice(at, match.index))
      macros.push(match[1] as keyof MacroValues)
      at = match.index + match[0].length
    }
    texts.push(template.slice(at))
    const origin = !templateHostIsFixed(template) ? undefined : parseHttpUrl(template.replace(MACRO, ''))?.origin
    entry = { texts, macros, placesClickId: macros.includes('click_id'), origin }
    if (compiled.size > 10_000) compiled.clear()
    compiled.set(template, entry)
  }
  return entry
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

function parseHttpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}
