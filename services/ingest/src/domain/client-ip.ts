import { BlockList, isIPv4, isIPv6 } from 'node:net'

/** `::ffff:1.2.3.4` (IPv4 through an IPv6 socket) is the IPv4 address 1.2.3.4. */
export function normalizeIp(ip: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip)
  return mapped ? mapped[1]! : ip
}

/**
 * What may be stored of a client IP (SPEC §6): IPv4 keeps its /24 (last octet 0), IPv6 its
 * /48 (first three groups). Anything that is not an IP address becomes ''.
 */
export function anonymizeIp(raw: string | undefined): string {
  if (!raw) return ''
  const ip = normalizeIp(raw.trim())
  if (isIPv4(ip)) return ip.replace(/\.\d{1,3}$/, '.0')
  if (isIPv6(ip)) {
    const groups = expandIPv6(ip).slice(0, 3).map((g) => g.replace(/^0+(?=.)/, ''))
    return `${groups.join(':')}::`
  }
  return ''
}

/** The eight 16-bit groups of an IPv6 address (zone stripped, embedded IPv4 converted). */
function expandIPv6(ip: string): string[] {
  let text = ip.replace(/%.*$/, '').toLowerCase()
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number]
    text = text.slice(0, v4.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const headGroups = head === '' ? [] : head.split(':')
  if (tail === undefined) return headGroups
  const tailGroups = tail === '' ? [] : tail.split(':')
  return [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups]
}

export function isIpAddress(text: string): boolean {
  return isIPv4(text) || isIPv6(text)
}

/**
 * A partner's IP allow-list (addresses or CIDR ranges, v4 or v6) as a matcher; an empty list
 * allows every address. Entries are checked by the admin API, so a bad one here is skipped.
 */
export function ipAllowList(entries: readonly string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => true
  const list = new BlockList()
  for (const entry of entries) {
    const parsed = parseAllowListEntry(entry)
    if (!parsed) continue
    if (parsed.prefix === undefined) list.addAddress(parsed.address, parsed.family)
    else list.addSubnet(parsed.address, parsed.prefix, parsed.family)
  }
  return (raw) => {
    const ip = normalizeIp(raw)
    if (isIPv4(ip)) return list.check(ip, 'ipv4')
    if (isIPv6(ip)) return list.check(ip, 'ipv6')
    return false
  }
}

export function parseAllowListEntry(
  entry: string,
): { address: string; prefix: number | undefined; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, ...rest] = entry.trim().split('/')
  if (rest.length > 0) return undefined
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined
  if (!family) return undefined
  if (prefixText === undefined) return { address, prefix: undefined, family }
  if (!/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = Number(prefixText)
  if (prefix > (family === 'ipv4' ? 32 : 128)) return undefined
  return { address, prefix, family }
}
