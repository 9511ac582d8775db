import { hash, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { ClickIdKeyring } from './keyring.ts'
import { takeRandomBytes } from './random-pool.ts'

// Layout, 24 bytes = exactly 32 base64url characters, so every character carries 6 bits
// that the MAC covers (no padding bits that could change without changing the bytes):
//   [0]      key ID
//   [1..6]   creation time, ms since the unix epoch, big-endian (good until year 10889)
//   [7..16]  80 random bits
//   [17..23] first 7 bytes of HMAC-SHA256(key, bytes 0..16)
const KEY_ID_AT = 0
const TIME_AT = 1
const TIME_BYTES = 6
const RANDOM_AT = 7
const RANDOM_BYTES = 10
const MAC_AT = 17
const MAC_BYTES = 7
const ID_BYTES = MAC_AT + MAC_BYTES

export const CLICK_ID_LENGTH = 32

/**
 * What a click ID looks like. Checked before decoding because Node's base64url decoder
 * silently skips characters outside the alphabet.
 */
export const CLICK_ID_PATTERN = /^[A-Za-z0-9_-]{32}$/

const MAX_TIME_MS = 2 ** (8 * TIME_BYTES) - 1

export type ClickIdVerification =
  | { valid: true; createdAtMs: number; keyId: number }
  | { valid: false; reason: 'malformed' | 'unknown_key' | 'bad_mac' }

/** A new click ID signed with the keyring's current key. */
export function generateClickId(keyring: ClickIdKeyring, nowMs: number = Date.now()): string {
  if (!Number.isInteger(nowMs) || nowMs < 0 || nowMs > MAX_TIME_MS) {
    throw new RangeError(`click ID time must be an integer number of ms in 0..${MAX_TIME_MS}, got ${nowMs}`)
  }
  const key = keyring.keys.get(keyring.currentKeyId)
  if (key === undefined) throw new Error(`click ID keyring has no current key ${keyring.currentKeyId}`)

  const bytes = Buffer.allocUnsafe(ID_BYTES)
  bytes[KEY_ID_AT] = keyring.currentKeyId
  bytes.writeUIntBE(nowMs, TIME_AT, TIME_BYTES)
  takeRandomBytes(bytes, RANDOM_AT, RANDOM_BYTES)
  clickIdMac(key, bytes).copy(bytes, MAC_AT, 0, MAC_BYTES)
  return bytes.toString('base64url')
}

/**
 * Whether `id` is a click ID signed by one of the keyring's keys, and if so when it was made.
 * Needs no lookup: a forged, garbled or truncated ID fails here.
 */
export function verifyClickId(keyring: ClickIdKeyring, id: string): ClickIdVerification {
  if (typeof id !== 'string' || !CLICK_ID_PATTERN.test(id)) return { valid: false, reason: 'malformed' }
  const bytes = Buffer.from(id, 'base64url')
  const keyId = bytes[KEY_ID_AT] as number
  const key = keyring.keys.get(keyId)
  if (key === undefined) return { valid: false, reason: 'unknown_key' }

  const expected = clickIdMac(key, bytes).subarray(0, MAC_BYTES)
  if (!timingSafeEqual(expected, bytes.subarray(MAC_AT, ID_BYTES))) return { valid: false, reason: 'bad_mac' }
  return { valid: true, createdAtMs: bytes.readUIntBE(TIME_AT, TIME_BYTES), keyId }
}

/**
 * The creation time a click ID in the click-ID format carries, without checking its MAC, or
 * undefined for any other text. Only for IDs this system minted and reads back from its own
 * topics (the attributor recording ingest's clicks); an ID that comes from outside (a postback,
 * a pixel) must go through verifyClickId. About a tenth of its cost: no HMAC.
 */
export function clickIdTime(id: string): number | undefined {
  if (!CLICK_ID_PATTERN.test(id)) return undefined
  return Buffer.from(id.slice(0, 12), 'base64url').readUIntBE(TIME_AT, TIME_BYTES)
}

/** SHA-256's block: HMAC pads (or first hashes) the key to this length. */
const SHA256_BLOCK_BYTES = 64
const SHA256_BYTES = 32

/**
 * A key's HMAC pads, each followed by room for what is hashed after it:
 * inner = (K ⊕ ipad) ‖ message (17 bytes), outer = (K ⊕ opad) ‖ inner hash (32 bytes).
 */
interface MacBlocks {
  readonly inner: Buffer
  readonly outer: Buffer
}

const macBlocks = new WeakMap<KeyObject, MacBlocks>()

function blocksOf(key: KeyObject): MacBlocks {
  let blocks = macBlocks.get(key)
  if (blocks === undefined) {
    let secret = key.export()
    if (secret.length > SHA256_BLOCK_BYTES) secret = hash('sha256', secret, 'buffer')
    // Kept out of logs like the KeyObject: never a property of anything printable.
    const inner = Buffer.alloc(SHA256_BLOCK_BYTES + MAC_AT)
    const outer = Buffer.alloc(SHA256_BLOCK_BYTES + SHA256_BYTES)
    for (let i = 0; i < SHA256_BLOCK_BYTES; i++) {
      const k = secret[i] ?? 0
      inner[i] = k ^ 0x36
      outer[i] = k ^ 0x5c
    }
    blocks = { inner, outer }
    macBlocks.set(key, blocks)
  }
  return blocks
}

/**
 * HMAC-SHA256(key, bytes 0..16), computed as RFC 2104 defines it,
 * H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m)), with two one-shot `crypto.hash` calls over the key's
 * precomputed pads: the same bytes as `createHmac`, at about half its cost per click ID (no Hmac
 * object, no KeyObject unwrapping per call; docs/benchmarks.md, branch `edgecpu3`). The pads are
 * per-key scratch buffers, so the call must stay synchronous.
 */
export function clickIdMac(key: KeyObject, bytes: Buffer): Buffer {
  const { inner, outer } = blocksOf(key)
  bytes.copy(inner, SHA256_BLOCK_BYTES, 0, MAC_AT)
  hash('sha256', inner, 'buffer').copy(outer, SHA256_BLOCK_BYTES)
  return hash('sha256', outer, 'buffer')
}
