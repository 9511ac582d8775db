import { describe, expect, it } from 'vitest'
import { createHostGate } from './host-gate.ts'

describe('host gate', () => {
  it('limits calls in flight per host, independently of other hosts', () => {
    const gate = createHostGate({ perHostLimit: 2, failureThreshold: 3, cooldownMs: 1_000 })
    expect(gate.admit('slow', 0, 0).admitted).toBe(true)
    expect(gate.admit('slow', 0, 0).admitted).toBe(true)
    expect(gate.admit('slow', 0, 0)).toEqual({ admitted: false, reason: 'busy', retryAt: 100 })
    expect(gate.admit('fast', 0, 0).admitted).toBe(true)
    gate.release('slow', 'success', 1)
    expect(gate.admit('slow', 1, 0).admitted).toBe(true)
  })

  it('opens after consecutive failures, holds the host for the cooldown, then lets one probe through', () => {
    const gate = createHostGate({ perHostLimit: 5, failureThreshold: 3, cooldownMs: 1_000 })
    for (let i = 0; i < 3; i++) {
      expect(gate.admit('h', 0, 0).admitted).toBe(true)
      gate.release('h', 'failure', 10)
    }
    expect(gate.admit('h', 500, 0)).toEqual({ admitted: false, reason: 'circuit_open', retryAt: 1_010 })
    expect(gate.openCircuits(500)).toBe(1)
    expect(gate.admit('h', 1_010, 0).admitted).toBe(true) // the probe
    expect(gate.admit('h', 1_010, 0)).toMatchObject({ admitted: false, reason: 'busy' })
    gate.release('h', 'failure', 1_020) // probe failed: open again
    expect(gate.admit('h', 1_500, 0)).toMatchObject({ admitted: false, reason: 'circuit_open' })
    expect(gate.admit('h', 2_020, 0).admitted).toBe(true)
    gate.release('h', 'success', 2_030) // probe succeeded: closed, full concurrency
    expect([1, 2, 3, 4, 5].map(() => gate.admit('h', 2_030, 0).admitted)).toEqual([true, true, true, true, true])
    expect(gate.openCircuits(2_030)).toBe(0)
  })

  it('a 4xx answer says the host is up: it does not count toward opening', () => {
    const gate = createHostGate({ perHostLimit: 5, failureThreshold: 2, cooldownMs: 1_000 })
    gate.admit('h', 0, 0)
    gate.release('h', 'failure', 0)
    gate.admit('h', 0, 0)
    gate.release('h', 'neutral', 0)
    gate.admit('h', 0, 0)
    gate.release('h', 'failure', 0)
    expect(gate.admit('h', 0, 0).admitted).toBe(true)
  })
})
