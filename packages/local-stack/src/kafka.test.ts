import { describe, expect, it } from 'vitest'
import { kraftClusterId } from './kafka.ts'

describe('kraftClusterId', () => {
  it('never begins with "-" or "_", which kafka-storage would read as an option', () => {
    // Every value of the first byte, including 0xf8..0xfb that base64url-encode to a leading '-'.
    for (let first = 0; first < 256; first++) {
      const id = kraftClusterId(Buffer.from([first, ...Array.from({ length: 15 }, () => 0xab)]))
      expect(id).toHaveLength(22)
      expect(id).toMatch(/^[A-Za-f][A-Za-z0-9_-]{21}$/)
    }
  })

  it('is 16 random bytes: two calls differ', () => {
    expect(kraftClusterId()).not.toEqual(kraftClusterId())
  })
})
