import ipaddr from 'ipaddr.js'

type Address = ipaddr.IPv4 | ipaddr.IPv6
type Cidr = [Address, number]

/** Networks a destination may resolve into although they are not public (DISPATCH_ALLOW_NETWORKS). */
export interface AllowedNetworks {
  readonly cidrs: readonly Cidr[]
  readonly text: readonly string[]
}

/** Parses comma-separated CIDRs ("127.0.0.1/32,10.1.0.0/16"); a bare address is its own /32 or /128. */
export function parseAllowedNetworks(text: string): AllowedNetworks {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
  const cidrs = entries.map((entry): Cidr => {
    try {
      if (entry.includes('/')) return ipaddr.parseCIDR(entry)
      const address = ipaddr.parse(entry)
      return [address, address.kind() === 'ipv4' ? 32 : 128]
    } catch {
      throw new Error(`"${entry}" is not a CIDR range such as 127.0.0.1/32 or fd00::/8`)
    }
  })
  return { cidrs, text: entries }
}

export const NO_ALLOWED_NETWORKS: AllowedNetworks = { cidrs: [], text: [] }

export type AddressVerdict = { allowed: true } | { allowed: false; reason: string }

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one a connection would reach:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
 */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  if (address.isIPv4MappedAddress()) return address.toIPv4Address()
  // :: and ::1 are IPv6's own unspecified and loopback addresses, not IPv4-compatible ones.
  if (address.range() === 'unspecified' || address.range() === 'loopback') return undefined
  const parts = address.parts
  const bytes = address.toByteArray()
  const compatible = parts.slice(0, 6).every((p) => p === 0)
  const nat64 = parts[0] === 0x64 && parts[1] === 0xff9b && parts.slice(2, 6).every((p) => p === 0)
  if (compatible || nat64) return new ipaddr.IPv4(bytes.slice(12))
  return undefined
}

function inside(address: Address, cidrs: readonly Cidr[]): boolean {
  return cidrs.some(([network, bits]) => network.kind() === address.kind() && address.match(network as never, bits))
}

/**
 * Whether the dispatcher may connect to `ip` (SSRF, SPEC §5b): only public unicast addresses,
 * unless the address lies in an allowed network. Refused: loopback, private (RFC 1918),
 * link-local (169.254/16 with the cloud metadata endpoints, fe80::/10), multicast, broadcast,
 * unspecified, carrier-grade NAT (100.64/10), unique-local (fc00::/7), reserved and
 * documentation ranges, 6to4 and Teredo tunnels, and every IPv6 form that embeds a refused
 * IPv4 address (::ffff:10.0.0.1, ::10.0.0.1, 64:ff9b::10.0.0.1). Not an IP address: refused.
 */
export function addressVerdict(ip: string, allowed: AllowedNetworks): AddressVerdict {
  let address: Address
  try {
    address = ipaddr.parse(ip.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, ''))
  } catch {
    return { allowed: false, reason: `not an IP address: ${ip}` }
  }
  const effective: Address = address.kind() === 'ipv6' ? (embeddedIPv4(address as ipaddr.IPv6) ?? address) : address
  if (inside(address, allowed.cidrs) || inside(effective, allowed.cidrs)) return { allowed: true }
  const range = effective.range()
  if (range === 'unicast') return { allowed: true }
  return { allowed: false, reason: `${ip} is a ${range} address` }
}

/** Whether a URL host is an IP literal (which is connected to without any name resolution). */
export function ipLiteral(hostname: string): string | undefined {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1')
  return ipaddr.isValid(bare) && (bare.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(bare)) ? bare : undefined
}
