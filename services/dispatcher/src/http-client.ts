import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns'
import type { LookupFunction } from 'node:net'
import { Agent, request } from 'undici'
import { addressVerdict, ipLiteral, type AllowedNetworks } from './domain/address-policy.ts'

/** The destination resolves (or is) an address the dispatcher must not connect to (SSRF). */
export class RefusedDestinationError extends Error {
  override readonly name = 'RefusedDestinationError'
  readonly code = 'ERR_DESTINATION_REFUSED'
}

export type AttemptResult =
  | { kind: 'response'; statusCode: number; durationMs: number }
  | { kind: 'error'; error: string; durationMs: number }
  | { kind: 'refused'; error: string; durationMs: number }

export interface PostbackRequest {
  url: string
  method: 'GET' | 'POST'
  headers: Record<string, string>
  body: string
}

export interface PostbackClient {
  send(request: PostbackRequest): Promise<AttemptResult>
  close(): Promise<void>
}

type Resolve = (hostname: string, options: LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void

/**
 * A `lookup` for net/tls.connect that resolves the name and hands the socket only addresses
 * that pass the policy: the socket connects to exactly the address that was checked, with no
 * second resolution in between (DNS rebinding cannot slip a private address in).
 */
export function guardedLookup(allowed: AllowedNetworks, resolve: Resolve = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0)
      const permitted = addresses.filter((a) => addressVerdict(a.address, allowed).allowed)
      if (permitted.length === 0) {
        const reasons = addresses.map((a) => (addressVerdict(a.address, allowed) as { reason: string }).reason)
        return callback(new RefusedDestinationError(`${hostname} resolves only to refused addresses: ${reasons.join('; ')}`), '', 0)
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, permitted)
      callback(null, permitted[0]!.address, permitted[0]!.family)
    })
  }
}

function refusal(error: unknown): RefusedDestinationError | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e instanceof RefusedDestinationError) return e
  }
  return undefined
}

/**
 * Calls publishers' URLs: undici with a guarded lookup, a whole-call timeout (connect,
 * headers and body), no redirects followed (a 3xx is not delivered), no proxy. The answer's
 * body is read and thrown away (at most what arrives before the timeout).
 */
export function createPostbackClient(options: {
  allowedNetworks: AllowedNetworks
  timeoutMs: number
  connectionsPerOrigin: number
  resolve?: Resolve
}): PostbackClient {
  const agent = new Agent({
    connect: { lookup: guardedLookup(options.allowedNetworks, options.resolve), timeout: options.timeoutMs },
    connections: options.connectionsPerOrigin,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    keepAliveTimeout: 4_000,
  })

  return {
    async send(call) {
      const started = performance.now()
      const elapsed = () => Math.round(performance.now() - started)
      let url: URL
      try {
        url = new URL(call.url)
      } catch {
        return { kind: 'refused', error: 'not a valid URL after macro expansion', durationMs: 0 }
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return { kind: 'refused', error: `scheme ${url.protocol} is not http(s)`, durationMs: 0 }
      // An IP literal is connected to without a lookup: check it here.
      const literal = ipLiteral(url.hostname)
      if (literal !== undefined) {
        const verdict = addressVerdict(literal, options.allowedNetworks)
        if (!verdict.allowed) return { kind: 'refused', error: verdict.reason, durationMs: 0 }
      }
      try {
        const response = await request(url, {
          dispatcher: agent,
          method: call.method,
          headers: call.headers,
          body: call.method === 'POST' ? call.body : null,
          signal: AbortSignal.timeout(options.timeoutMs),
          maxRedirections: 0,
        })
        await response.body.dump({ limit: 64 * 1024 })
        return { kind: 'response', statusCode: response.statusCode, durationMs: elapsed() }
      } catch (error) {
        const refused = refusal(error)
        if (refused) return { kind: 'refused', error: refused.message, durationMs: elapsed() }
        const e = error as Error & { code?: string }
        const message = e.name === 'TimeoutError' || e.name === 'AbortError' ? `timed out after ${options.timeoutMs} ms` : `${e.code ?? e.name}: ${e.message}`
        return { kind: 'error', error: message, durationMs: elapsed() }
      }
    },
    close: () => agent.close(),
  }
}
