import { createHmac, createSecretKey, randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { CLICK_ID_PATTERN, clickIdMac, clickIdTime, generateClickId, verifyClickId } from './click-id.ts'
import { createClickIdKeyring } from './keyring.ts'
import { hmacSha256PadStates } from './sha256-block.ts'

const SECRET_A = 'a-secret-of-at-least-32-bytes-000000'
const SECRET_B = 'b-secret-of-at-least-32-bytes-111111'
const SECRET_C = 'c-secret-of-at-least-32-bytes-222222'
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

const keyring = createClickIdKeyring({ keys: { 1: SECRET_A, 2: SECRET_B }, currentKeyId: 1 })

describe('generateClickId', () => {
  it('makes URL-safe IDs of at most 32 characters that verify', () => {
    for (let i = 0; i < 1000; i++) {
      const id = generateClickId(keyring)
      expect(id).toMatch(/^[A-Za-z0-9_-]{1,32}$/)
      expect(id).toHaveLength(32)
      expect(verifyClickId(keyring, id)).toMatchObject({ valid: true, keyId: 1 })
    }
  })

  it('has no collision among 1,000,000 IDs made in the same millisecond', () => {
    // A fixed time leaves the random bits as the only source of uniqueness.
    const nowMs = 1_700_000_000_000
    const count = 1_000_000
    const seen = new Set<string>()
    for (let i = 0; i < count; i++) seen.add(generateClickId(keyring, nowMs))
    expect(seen.size).toBe(count)
  })

  it('carries its creation time, which verification returns', () => {
    for (const nowMs of [0, 1, 1_700_000_000_123, Date.now(), 2 ** 48 - 1]) {
      const id = generateClickId(keyring, nowMs)
      expect(verifyClickId(keyring, id)).toEqual({ valid: true, createdAtMs: nowMs, keyId: 1 })
    }
  })

  it('carries its creation time, which clickIdTime reads without the key', () => {
    for (const nowMs of [0, 1, 1_700_000_000_123, Date.now(), 2 ** 48 - 1]) expect(clickIdTime(generateClickId(keyring, nowMs))).toBe(nowMs)
    for (const other of ['', 'abc', 'x'.repeat(31), `${'A'.repeat(31)}!`, 'A'.repeat(33)]) expect(clickIdTime(other)).toBeUndefined()
  })

  it('refuses a time it cannot encode', () => {
    for (const nowMs of [-1, 1.5, 2 ** 48, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => generateClickId(keyring, nowMs)).toThrow(RangeError)
    }
  })

  it('signs with the current key', () => {
    const withB = createClickIdKeyring({ keys: { 1: SECRET_A, 2: SECRET_B }, currentKeyId: 2 })
    expect(verifyClickId(withB, generateClickId(withB))).toMatchObject({ valid: true, keyId: 2 })
  })
})

describe('verifyClickId', () => {
  const sample = Array.from({ length: 8 }, (_, i) => generateClickId(keyring, 1_700_000_000_000 + i))

  it('rejects every single-character change', () => {
    let checked = 0
    for (const id of sample) {
      for (let position = 0; position < id.length; position++) {
        for (const char of ALPHABET) {
          if (char === id[position]) continue
          const changed = id.slice(0, position) + char + id.slice(position + 1)
          const result = verifyClickId(keyring, changed)
          if (result.valid) throw new Error(`accepted ${changed} (changed ${id} at ${position})`)
          expect(['unknown_key', 'bad_mac']).toContain(result.reason)
          checked++
        }
      }
    }
    expect(checked).toBe(sample.length * 32 * 63)
  })

  it('rejects truncated and extended IDs as malformed', () => {
    for (const id of sample) {
      for (let length = 0; length < id.length; length++) {
        expect(verifyClickId(keyring, id.slice(0, length))).toEqual({ valid: false, reason: 'malformed' })
      }
      for (const char of ALPHABET) {
        expect(verifyClickId(keyring, id + char)).toEqual({ valid: false, reason: 'malformed' })
        expect(verifyClickId(keyring, char + id)).toEqual({ valid: false, reason: 'malformed' })
      }
      expect(verifyClickId(keyring, `${id}\n`)).toEqual({ valid: false, reason: 'malformed' })
    }
  })

  it('rejects characters outside the alphabet that a base64 decoder would skip', () => {
    const [id] = sample as [string]
    for (const char of ['=', '+', '/', '.', ' ', '%', 'é', '\u0000']) {
      const changed = char + id.slice(1)
      expect(verifyClickId(keyring, changed)).toEqual({ valid: false, reason: 'malformed' })
    }
    expect(verifyClickId(keyring, undefined as unknown as string)).toEqual({ valid: false, reason: 'malformed' })
  })

  it('rejects an ID signed with another secret under the same key ID', () => {
    const impostor = createClickIdKeyring({ keys: { 1: SECRET_C }, currentKeyId: 1 })
    const forged = generateClickId(impostor)
    expect(verifyClickId(impostor, forged)).toMatchObject({ valid: true })
    expect(verifyClickId(keyring, forged)).toEqual({ valid: false, reason: 'bad_mac' })
  })

  it('covers the key ID with the MAC, so an ID cannot be moved to another key', () => {
    const sameSecret = createClickIdKeyring({ keys: { 1: SECRET_A, 2: SECRET_A }, currentKeyId: 1 })
    const bytes = Buffer.from(generateClickId(sameSecret), 'base64url')
    bytes[0] = 2
    expect(verifyClickId(sameSecret, bytes.toString('base64url'))).toEqual({ valid: false, reason: 'bad_mac' })
  })

  it('keeps verifying old IDs after a rotation until the old key is removed', () => {
    const before = createClickIdKeyring({ keys: { 1: SECRET_A }, currentKeyId: 1 })
    const during = createClickIdKeyring({ keys: { 1: SECRET_A, 2: SECRET_B }, currentKeyId: 2 })
    const after = createClickIdKeyring({ keys: { 2: SECRET_B }, currentKeyId: 2 })
    const oldId = generateClickId(before)
    const newId = generateClickId(during)

    expect(verifyClickId(during, oldId)).toMatchObject({ valid: true, keyId: 1 })
    expect(verifyClickId(during, newId)).toMatchObject({ valid: true, keyId: 2 })
    expect(verifyClickId(after, newId)).toMatchObject({ valid: true, keyId: 2 })
    expect(verifyClickId(after, oldId)).toEqual({ valid: false, reason: 'unknown_key' })
  })

  it('matches the published pattern exactly for generated IDs', () => {
    for (const id of sample) expect(CLICK_ID_PATTERN.test(id)).toBe(true)
  })
})

describe('clickIdMac', () => {
  // Secrets of 32 bytes, exactly one SHA-256 block (64), and over it (HMAC hashes those first).
  const secrets = [SECRET_A, 'k'.repeat(64), 'long-'.repeat(20), randomBytes(48).toString('base64'), 'ü'.repeat(40)]

  it("equals createHmac's HMAC-SHA256 of the ID's first 17 bytes, for keys shorter, equal to and longer than a block", () => {
    for (const secret of secrets) {
      const key = createSecretKey(Buffer.from(secret, 'utf8'))
      for (let i = 0; i < 2_000; i++) {
        const bytes = randomBytes(24)
        const expected = createHmac('sha256', Buffer.from(secret, 'utf8')).update(bytes.subarray(0, 17)).digest()
        expect(clickIdMac(key, bytes).equals(expected)).toBe(true)
      }
    }
  })

  it("puts createHmac's first 7 bytes in generated IDs, with several keys used in turn", () => {
    const keys = Object.fromEntries(secrets.map((secret, i) => [i + 1, secret]))
    for (let round = 0; round < 500; round++) {
      for (const keyId of [1, 2, 3, 4, 5]) {
        const ring = createClickIdKeyring({ keys, currentKeyId: keyId })
        const bytes = Buffer.from(generateClickId(ring, 1_700_000_000_000 + round), 'base64url')
        const mac = createHmac('sha256', Buffer.from(secrets[keyId - 1]!, 'utf8')).update(bytes.subarray(0, 17)).digest()
        expect(bytes.subarray(17).equals(mac.subarray(0, 7))).toBe(true)
        expect(bytes[0]).toBe(keyId)
      }
    }
  })
})

describe('the MAC against a plain createHmac', () => {
  // A secret longer than a SHA-256 block too: HMAC hashes it first.
  const secrets = [SECRET_A, 'long-'.repeat(30)]

  it('accepts IDs whose MAC createHmac made, and refuses them with one MAC bit flipped', () => {
    for (const [index, secret] of secrets.entries()) {
      const ring = createClickIdKeyring({ keys: { [index + 1]: secret }, currentKeyId: index + 1 })
      for (let i = 0; i < 1_000; i++) {
        const bytes = Buffer.alloc(24)
        bytes[0] = index + 1
        bytes.writeUIntBE(1_700_000_000_000 + i, 1, 6)
        randomBytes(10).copy(bytes, 7)
        createHmac('sha256', secret).update(bytes.subarray(0, 17)).digest().copy(bytes, 17, 0, 7)
        const id = bytes.toString('base64url')
        expect(verifyClickId(ring, id)).toEqual({ valid: true, createdAtMs: 1_700_000_000_000 + i, keyId: index + 1 })
        bytes[17 + (i % 7)]! ^= 1 << i % 8
        expect(verifyClickId(ring, bytes.toString('base64url'))).toEqual({ valid: false, reason: 'bad_mac' })
      }
    }
  })

  it('keeps the key and its pad states out of what a keyring prints', () => {
    const ring = createClickIdKeyring({ keys: { 1: SECRET_A }, currentKeyId: 1 })
    generateClickId(ring)
    const { inner, outer } = hmacSha256PadStates(Buffer.from(SECRET_A, 'utf8'))
    const printed = inspect(ring, { depth: Infinity, showHidden: true }) + JSON.stringify(ring)
    expect(printed).not.toContain(SECRET_A)
    for (const word of [...inner, ...outer]) expect(printed).not.toContain(String(word))
  })
})
