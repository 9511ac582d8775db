/**
 * The value of cookie `name` in a `Cookie` request header, as the `cookie` package reads it
 * (the first occurrence wins, surrounding quotes dropped, percent-decoded when valid). Parsed
 * by the one route that reads a cookie instead of by a plugin hook on every request.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header?.includes(name)) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1)
    if (!value.includes('%')) return value
    try {
      return decodeURIComponent(value)
    } catch {
      return value
    }
  }
  return undefined
}
