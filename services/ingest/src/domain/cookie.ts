import { parseCookie, stringifySetCookie } from 'cookie'

/**
 * The value of cookie `name` in a `Cookie` request header (the `cookie` package's reading:
 * first occurrence wins, percent-decoded when valid). Read by the one route
 * that needs a cookie, instead of by a plugin hook on every request.
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header?.includes(name)) return undefined
  return parseCookie(header)[name]
}

/** `<name>=<value>; Max-Age=…; Path=/; HttpOnly; SameSite=Lax`, plus `Secure` on https. */
export function setCookieHeader(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return stringifySetCookie({ name, value, maxAge: Math.floor(maxAgeSeconds), path: '/', httpOnly: true, secure, sameSite: 'lax' })
}
