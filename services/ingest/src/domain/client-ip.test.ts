import { describe, expect, it } from 'vitest'
import { anonymizeIp, ipAllowList, parseAllowListEntry } from './client-ip.ts'

describe('anonymizeIp', () => {
  it('keeps the /24 of IPv4 and the /48 of IPv6', () => {
    expect(anonymizeIp('203.0.113.77')).toBe('203.0.113.0')
    expect(anonymizeIp('::ffff:203.0.113.77')).toBe('203.0.113.0')
    expect(anonymizeIp('2001:db8:abcd:12:34::1')).toBe('2001:db8:abcd::')
    expect(anonymizeIp('2001:0db8:0000:0012::')).toBe('2001:db8:0::')
    expect(anonymizeIp('::1')).toBe('0:0:0::')
    expect(anonymizeIp('fe80::1%eth0')).toBe('fe80:0:0::')
    expect(anonymizeIp('64:ff9b::192.0.2.33')).toBe('64:ff9b:0::')
  })
  it('stores nothing for what is not an address', () => {
    expect(anonymizeIp('')).toBe('')
    expect(anonymizeIp(undefined)).toBe('')
    expect(anonymizeIp('not-an-ip')).toBe('')
  })
})

describe('ipAllowList', () => {
  it('matches addresses and CIDR ranges of both families; an empty list allows all', () => {
    const allowed = ipAllowList(['10.1.0.0/16', '192.0.2.7', '2001:db8::/32'])
    expect(allowed('10.1.200.3')).toBe(true)
    expect(allowed('::ffff:10.1.2.3')).toBe(true)
    expect(allowed('192.0.2.7')).toBe(true)
    expect(allowed('192.0.2.8')).toBe(false)
    expect(allowed('2001:db8:1::5')).toBe(true)
    expect(allowed('2001:db9::5')).toBe(false)
    expect(allowed('garbage')).toBe(false)
    expect(ipAllowList([])('198.51.100.1')).toBe(true)
  })
  it('rejects entries that are not addresses or ranges', () => {
    expect(parseAllowListEntry('10.0.0.0/33')).toBeUndefined()
    expect(parseAllowListEntry('example.com')).toBeUndefined()
    expect(parseAllowListEntry('10.0.0.0/8/1')).toBeUndefined()
    expect(parseAllowListEntry('::/0')).toEqual({ address: '::', prefix: 0, family: 'ipv6' })
  })
})
