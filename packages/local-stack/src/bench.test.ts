import { describe, expect, it } from 'vitest'
import { envAssignments } from './bench.ts'

describe('envAssignments', () => {
  it('reads NAME=value pairs, keeps an = inside a value, trims, and skips entries without =', () => {
    expect(envAssignments(' A=1, CLICK_ID_KEYS=1:ab== ,bad,')).toEqual({ A: '1', CLICK_ID_KEYS: '1:ab==' })
    expect(envAssignments('')).toEqual({})
  })
})
