/**
 * Per-host admission: at most `perHostLimit` calls in flight to one host, and a circuit
 * breaker that, after `failureThreshold` consecutive failures, holds the host's deliveries for
 * `cooldownMs` and then lets one probe call through. A delivery that is not admitted is put
 * back for later without an attempt: a slow or dead host never occupies the workers that
 * other hosts need. In-process state: each instance protects the hosts from itself.
 */
export interface HostGateOptions {
  perHostLimit: number
  failureThreshold: number
  cooldownMs: number
}

export type Admission = { admitted: true } | { admitted: false; reason: 'busy' | 'circuit_open'; retryAt: number }

/** How an admitted call ended, for the breaker: `neutral` for answers that say the host is up (4xx). */
export type CallResult = 'success' | 'failure' | 'neutral'

interface HostState {
  active: number
  failures: number
  openUntil: number
}

export interface HostGate {
  admit(host: string, now: number, random: number): Admission
  release(host: string, result: CallResult, now: number): void
  openCircuits(now: number): number
}

export function createHostGate(options: HostGateOptions): HostGate {
  const hosts = new Map<string, HostState>()
  const state = (host: string): HostState => {
    let s = hosts.get(host)
    if (!s) hosts.set(host, (s = { active: 0, failures: 0, openUntil: 0 }))
    return s
  }
  return {
    admit(host, now, random) {
      const s = state(host)
      if (s.openUntil > now) return { admitted: false, reason: 'circuit_open', retryAt: s.openUntil + Math.round(random * 1_000) }
      // Half-open: one probe at a time until a call succeeds.
      const limit = s.failures >= options.failureThreshold ? 1 : options.perHostLimit
      if (s.active >= limit) return { admitted: false, reason: 'busy', retryAt: now + 100 + Math.round(random * 400) }
      s.active++
      return { admitted: true }
    },
    release(host, result, now) {
      const s = state(host)
      s.active = Math.max(0, s.active - 1)
      if (result === 'success' || result === 'neutral') {
        s.failures = 0
        s.openUntil = 0
      } else {
        s.failures++
        if (s.failures >= options.failureThreshold) s.openUntil = now + options.cooldownMs
      }
      if (s.active === 0 && s.failures === 0) hosts.delete(host)
    },
    openCircuits: (now) => [...hosts.values()].filter((s) => s.openUntil > now).length,
  }
}
