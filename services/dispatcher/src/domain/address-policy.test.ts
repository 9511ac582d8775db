import { describe, expect, it } from 'vitest'
import { addressVerdict, ipLiteral, NO_ALLOWED_NETWORKS, parseAllowedNetworks } from './address-policy.ts'

describe('addressVerdict', () => {
  const refused = [
    '127.0.0.1', '127.0.0.2', '10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0',
    '224.0.0.1', '255.255.255.255', '192.0.2.1', '::1', '::', 'fe80::1', 'fe80::1%eth0', 'fc00::1', 'fd12:3456::1', 'ff02::1',
    '::ffff:10.0.0.1', '::ffff:127.0.0.1', '::ffff:169.254.169.254', '::10.0.0.1', '64:ff9b::10.0.0.1', '2002:a00:1::1',
    '2001::1', '[::1]', 'not-an-ip',
  ]
  for (const ip of refused) {
    it(`refuses ${ip}`, () => expect(addressVerdict(ip, NO_ALLOWED_NETWORKS).allowed).toBe(false))
  }

  const allowed = ['8.8.8.8', '93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::8.8.8.8']
  for (const ip of allowed) {
    it(`allows ${ip}`, () => expect(addressVerdict(ip, NO_ALLOWED_NETWORKS)).toEqual({ allowed: true }))
  }

  it('allows what DISPATCH_ALLOW_NETWORKS names, and only that', () => {
    const only = parseAllowedNetworks('127.0.0.1/32')
    expect(addressVerdict('127.0.0.1', only).allowed).toBe(true)
    expect(addressVerdict('::ffff:127.0.0.1', only).allowed).toBe(true)
    expect(addressVerdict('127.0.0.2', only)).toEqual({ allowed: false, reason: '127.0.0.2 is a loopback address' })
    expect(addressVerdict('::1', only)).toEqual({ allowed: false, reason: '::1 is a loopback address' })
    expect(addressVerdict('::', only)).toEqual({ allowed: false, reason: ':: is a unspecified address' })
    expect(addressVerdict('::10.0.0.1', only)).toEqual({ allowed: false, reason: '::10.0.0.1 is a private address' })
    const wide = parseAllowedNetworks(' 10.1.0.0/16 , fd00::/8,::1')
    expect(wide.text).toEqual(['10.1.0.0/16', 'fd00::/8', '::1'])
    expect(['10.1.200.3', 'fd00::5', '::1'].map((ip) => addressVerdict(ip, wide).allowed)).toEqual([true, true, true])
    expect(['10.2.0.1', 'fc00::1', '::2'].map((ip) => addressVerdict(ip, wide).allowed)).toEqual([false, false, false])
  })

  it('refuses a malformed allow list with the entry named', () => {
    expect(() => parseAllowedNetworks('10.0.0.0/8,nonsense')).toThrow(/"nonsense"/)
    expect(() => parseAllowedNetworks('10.0.0.0/33')).toThrow(/10.0.0.0\/33/)
    expect(parseAllowedNetworks('').cidrs).toEqual([])
  })
})

describe('ipLiteral', () => {
  it('recognises the IP literals of URL hosts (which are connected to without resolution)', () => {
    expect(['127.0.0.2', '[::1]', '[::ffff:7f00:1]', 'example.com', 'localhost'].map(ipLiteral)).toEqual([
      '127.0.0.2', '::1', '::ffff:7f00:1', undefined, undefined,
    ])
    expect(new URL('http://0x7f.1/').hostname).toBe('127.0.0.1') // WHATWG URL normalizes odd IPv4 forms first
  })
})
