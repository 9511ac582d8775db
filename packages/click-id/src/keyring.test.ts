import { describe, expect, it } from 'vitest'
import { ClickIdKeyError, createClickIdKeyring, parseClickIdKeys } from './keyring.ts'

const SECRET_A = 'a-secret-of-at-least-32-bytes-000000'
const SECRET_B = 'b-secret-of-at-least-32-bytes-111111'

describe('createClickIdKeyring', () => {
  it('accepts a record or a map of keys', () => {
    const fromRecord = createClickIdKeyring({ keys: { 1: SECRET_A, 7: SECRET_B }, currentKeyId: 7 })
    const fromMap = createClickIdKeyring({ keys: new Map([[0, SECRET_A], [255, SECRET_B]]), currentKeyId: 0 })
    expect([...fromRecord.keys.keys()]).toEqual([1, 7])
    expect(fromRecord.currentKeyId).toBe(7)
    expect([...fromMap.keys.keys()]).toEqual([0, 255])
  })

  it('rejects key IDs outside one byte', () => {
    for (const keyId of [-1, 256, 1.5]) {
      expect(() => createClickIdKeyring({ keys: new Map([[keyId, SECRET_A]]), currentKeyId: keyId })).toThrow(
        /key ID must be an integer 0–255/,
      )
    }
    expect(() => createClickIdKeyring({ keys: { 300: SECRET_A }, currentKeyId: 300 })).toThrow(ClickIdKeyError)
  })

  it('rejects secrets shorter than 32 bytes without echoing them', () => {
    const short = 'too-short-secret'
    const attempt = () => createClickIdKeyring({ keys: { 1: short }, currentKeyId: 1 })
    expect(attempt).toThrow(/key 1: secret must be at least 32 bytes/)
    expect(attempt).not.toThrow(short)
  })

  it('rejects a current key ID that is not in the keyring, and an empty keyring', () => {
    expect(() => createClickIdKeyring({ keys: { 1: SECRET_A }, currentKeyId: 2 })).toThrow(/current click ID key 2/)
    expect(() => createClickIdKeyring({ keys: {}, currentKeyId: 1 })).toThrow(/at least one key/)
  })

  it('does not reveal secrets when serialised', () => {
    const keyring = createClickIdKeyring({ keys: { 1: SECRET_A }, currentKeyId: 1 })
    expect(JSON.stringify(keyring)).not.toContain(SECRET_A)
  })
})

describe('parseClickIdKeys', () => {
  it('parses "<id>:<secret>" entries, keeping colons inside secrets', () => {
    const keys = parseClickIdKeys(`1:${SECRET_A}, 2:${SECRET_B}:with:colons`)
    expect(keys).toEqual(
      new Map([
        [1, SECRET_A],
        [2, `${SECRET_B}:with:colons`],
      ]),
    )
  })

  it('explains each kind of mistake without repeating the secret', () => {
    const cases: [string, RegExp][] = [
      ['', /no click ID keys/],
      [' , ', /no click ID keys/],
      [SECRET_A, /entry 1: expected "<keyId>:<secret>"/],
      [`1:${SECRET_A},x:${SECRET_B}`, /entry 2: key ID must be an integer 0–255/],
      [`256:${SECRET_A}`, /key ID must be an integer 0–255/],
      [`-1:${SECRET_A}`, /entry 1: key ID must be an integer/],
      [`1:${SECRET_A},1:${SECRET_B}`, /entry 2: key ID 1 appears twice/],
      ['1:short', /key 1: secret must be at least 32 bytes/],
      [`1:${SECRET_A},,2:${SECRET_B}`, /entry 2: expected/],
    ]
    for (const [text, message] of cases) {
      let error: unknown
      try {
        parseClickIdKeys(text)
      } catch (caught) {
        error = caught
      }
      expect(error, text).toBeInstanceOf(ClickIdKeyError)
      expect((error as Error).message).toMatch(message)
      expect((error as Error).message).not.toContain(SECRET_A)
      expect((error as Error).message).not.toContain('short')
    }
  })

  it('feeds createClickIdKeyring', () => {
    const keyring = createClickIdKeyring({ keys: parseClickIdKeys(`3:${SECRET_A}`), currentKeyId: 3 })
    expect(keyring.keys.has(3)).toBe(true)
  })
})
