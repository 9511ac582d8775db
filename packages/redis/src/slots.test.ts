import { describe, expect, it } from 'vitest'
import { groupBySlot, hashTag, hashedPart, keySlot } from './slots.ts'

describe('keySlot', () => {
  // Values from the Redis Cluster specification and `CLUSTER KEYSLOT` on redis-server 7.0.
  it.each([
    ['123456789', 12_739], // CRC16-XMODEM("123456789") = 0x31C3
    ['foo', 12_182],
    ['bar', 5_061],
    ['{user1000}.following', 3_443],
    ['{user1000}.followers', 3_443],
  ])('slot of %s is %i', (key, slot) => {
    expect(keySlot(key)).toBe(slot)
  })

  it('hashes only the first tag, and the whole key when the tag is empty or unclosed', () => {
    expect(hashedPart('foo{}{bar}').toString()).toBe('foo{}{bar}')
    expect(hashedPart('foo{{bar}}zap').toString()).toBe('{bar')
    expect(hashedPart('foo{bar}{zap}').toString()).toBe('bar')
    expect(hashedPart('foo{bar').toString()).toBe('foo{bar')
    expect(keySlot('cj:click:{abc}')).toBe(keySlot('abc'))
    expect(keySlot(Buffer.from('x{abc}y'))).toBe(keySlot('abc'))
  })
})

describe('hashTag', () => {
  it('puts keys with the same tag in one slot', () => {
    const tag = hashTag('conv:partner-7:txn-1')
    expect(tag).toBe('{conv:partner-7:txn-1}')
    expect(keySlot(`cj:a:${tag}`)).toBe(keySlot(`cj:b:${tag}:x`))
  })

  it('refuses a value that would change which part is hashed', () => {
    expect(() => hashTag('')).toThrow(/empty/)
    expect(() => hashTag('a}b')).toThrow(/braces/)
    expect(() => hashTag('{a')).toThrow(/braces/)
  })
})

describe('groupBySlot', () => {
  it('groups items by the slot of their key, keeping batch order inside each group', () => {
    const items = ['{a}1', '{b}1', '{a}2', '{c}1', '{b}2', '{a}3']
    const groups = groupBySlot(items, (k) => k)
    expect([...groups.values()]).toEqual([['{a}1', '{a}2', '{a}3'], ['{b}1', '{b}2'], ['{c}1']])
    expect([...groups.keys()]).toEqual([keySlot('a'), keySlot('b'), keySlot('c')])
  })
})
