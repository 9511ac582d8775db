import type { LookupAddress } from 'node:dns'
import { describe, expect, it } from 'vitest'
import { parseAllowedNetworks } from './domain/address-policy.ts'
import { guardedLookup, RefusedDestinationError } from './http-client.ts'

/** A resolver that answers from a table, as DNS (or a rebinding attacker's DNS) would. */
const fakeResolver =
  (table: Record<string, LookupAddress[]>) =>
  (hostname: string, _options: object, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) =>
    table[hostname] ? callback(null, table[hostname]) : callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), [])

function lookup(allow: string, host: string, all: boolean) {
  const resolve = fakeResolver({
    'public.example': [{ address: '93.184.216.34', family: 4 }],
    'mixed.example': [
      { address: '10.0.0.1', family: 4 },
      { address: '93.184.216.34', family: 4 },
      { address: '::1', family: 6 },
    ],
    'metadata.example': [{ address: '169.254.169.254', family: 4 }],
    'mapped.example': [{ address: '::ffff:10.0.0.1', family: 6 }],
  })
  return new Promise<{ err: Error | null; result: unknown }>((resolvePromise) =>
    guardedLookup(parseAllowedNetworks(allow), resolve)(host, { all } as never, ((err: Error | null, address: unknown, family?: number) =>
      resolvePromise({ err, result: all ? address : [address, family] })) as never),
  )
}

describe('guardedLookup', () => {
  it('hands the socket only the addresses that passed the check', async () => {
    expect(await lookup('', 'public.example', true)).toEqual({ err: null, result: [{ address: '93.184.216.34', family: 4 }] })
    expect(await lookup('', 'public.example', false)).toEqual({ err: null, result: ['93.184.216.34', 4] })
    // A name that also resolves to private addresses: those are never given to the socket.
    expect(await lookup('', 'mixed.example', true)).toEqual({ err: null, result: [{ address: '93.184.216.34', family: 4 }] })
  })

  it('refuses a name with no acceptable address, saying why', async () => {
    for (const host of ['metadata.example', 'mapped.example']) {
      const { err } = await lookup('', host, true)
      expect(err).toBeInstanceOf(RefusedDestinationError)
      expect(err!.message).toMatch(/resolves only to refused addresses/)
    }
    expect((await lookup('10.0.0.0/8', 'mapped.example', true)).result).toEqual([{ address: '::ffff:10.0.0.1', family: 6 }])
  })

  it('passes resolution errors through (they are retried, not refused)', async () => {
    const { err } = await lookup('', 'nowhere.example', true)
    expect(err).not.toBeInstanceOf(RefusedDestinationError)
    expect((err as NodeJS.ErrnoException).code).toBe('ENOTFOUND')
  })
})
