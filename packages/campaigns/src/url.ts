import { Type } from '@sinclair/typebox'

/**
 * An absolute http(s) URL template as the admin API takes it (SPEC §4): a host of fixed text
 * (name, IPv4 or [IPv6]) and an optional port, then path, query and fragment without spaces or
 * control characters, where macros such as {click_id} may sit. The pattern is in the OpenAPI
 * document, so clients see the rule; `urlTemplateProblem` adds what a pattern cannot say.
 */
export const UrlTemplate = Type.String({
  pattern:
    '^[Hh][Tt][Tt][Pp][Ss]?://([A-Za-z0-9_~-]+(\\.[A-Za-z0-9_~-]+)*\\.?|\\[[0-9A-Fa-f:.]+\\])' +
    '(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4}))?' +
    '([/?#][^\\s\\u0000-\\u001f\\u007f-\\u009f]*)?$',
  maxLength: 4096,
  description: 'an absolute http(s) URL: a host, an optional port, then path, query and fragment without spaces or control characters',
})

/**
 * Why a URL template is unacceptable, or undefined when it is fine: an absolute http(s) URL
 * with a host and no control characters, macros only after scheme://host:port (a macro in
 * the host would let a request parameter choose where a visitor or the dispatcher goes).
 */
export function urlTemplateProblem(template: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f]/.test(template)) return 'must not contain spaces or control characters'
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
