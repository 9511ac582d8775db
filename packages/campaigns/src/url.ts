import { Type } from '@sinclair/typebox'

/**
 * An absolute http(s) URL template as the admin API takes it (SPEC §4): a host of fixed text
 * (a name whose last label starts with a letter, or a dotted IPv4 address) and an optional port, then path, query and fragment without spaces or
 * control characters, where macros such as {click_id} may sit. The pattern is in the OpenAPI
 * document, so clients see the rule; `urlTemplateProblem` adds what a pattern cannot say.
 */
const URL_HEAD =
  '^[Hh][Tt][Tt][Pp][Ss]?://(([A-Za-z0-9_~-]+\\.)*[A-Za-z][A-Za-z0-9_~-]*\\.?|' +
  '(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3})' +
  '(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?'

export const UrlTemplate = Type.String({
  pattern: `${URL_HEAD}([/?#][!-~]*)?$`,
  maxLength: 4096,
  description: 'an absolute http(s) URL: a host, an optional port, then path, query and fragment of printable ASCII (other characters percent-encoded)',
})

/** The same without macros (`{` `}`): a URL used as it is, such as a campaign's fallback. */
export const FixedUrl = Type.String({
  pattern: `${URL_HEAD}([/?#][!-z|~]*)?$`,
  maxLength: 4096,
  description: 'an absolute http(s) URL as UrlTemplate, without macros ({ and } percent-encoded)',
})

/**
 * Why a URL template is unacceptable, or undefined when it is fine: an absolute http(s) URL
 * with a host and no control characters, macros only after scheme://host:port (a macro in
 * the host would let a request parameter choose where a visitor or the dispatcher goes).
 */
export function urlTemplateProblem(template: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f]/.test(template)) return 'must not contain spaces or control characters'
  if (/[^\u0021-\u007e]/.test(template)) return 'must be printable ASCII: percent-encode other characters'
  const authority = /^(https?):\/\/([^/?#]*)/i.exec(template)
  if (!authority) return 'must be an absolute http or https URL'
  if (authority[2] === '') return 'must have a host'
  if (/[{}]/.test(authority[2]!)) return 'macros are allowed in the path, query and fragment only, not in scheme://host:port'
  let parsed: URL
  try {
    parsed = new URL(template.replace(/\{[a-z0-9_]+\}/g, 'x'))
  } catch {
    return 'is not a valid URL'
  }
  if (parsed.hostname === '') return 'must have a host'
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials before the host'
  return undefined
}
