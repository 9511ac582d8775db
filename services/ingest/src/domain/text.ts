/** Lone UTF-16 surrogates, which encodeURIComponent refuses and no column should store. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

export function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD')
}

/** Free text (user agent, referer) cut to its column's length, never splitting a character pair. */
export function truncateText(text: string | undefined, maxLength: number): string {
  if (!text) return ''
  return wellFormed(text.length > maxLength ? text.slice(0, maxLength) : text)
}
