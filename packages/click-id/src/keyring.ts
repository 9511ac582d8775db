import { createSecretKey, type KeyObject } from 'node:crypto'

/** HMAC-SHA256 keys shorter than this are guessable offline from a handful of IDs. */
export const MIN_CLICK_ID_SECRET_BYTES = 32

/** The key ID is one byte of the click ID. */
export const MAX_CLICK_ID_KEY_ID = 255

/**
 * The secrets click IDs are signed with. New IDs use `currentKeyId`; every key kept here still
 * verifies the IDs it signed, so a rotation adds a new key, makes it current, and removes the
 * old one only once its clicks are past every attribution window.
 */
export interface ClickIdKeyring {
  readonly currentKeyId: number
  readonly keys: ReadonlyMap<number, KeyObject>
}

export interface ClickIdKeyringOptions {
  keys: Readonly<Record<number, string>> | ReadonlyMap<number, string>
  currentKeyId: number
}

/** A key configuration that cannot sign or verify click IDs. Never contains a secret. */
export class ClickIdKeyError extends Error {
  override readonly name = 'ClickIdKeyError'
}

export function createClickIdKeyring(options: ClickIdKeyringOptions): ClickIdKeyring {
  const entries =
    options.keys instanceof Map
      ? [...(options.keys as ReadonlyMap<number, string>).entries()]
      : Object.entries(options.keys).map(([id, secret]): [number, string] => [toKeyId(id), secret])
  if (entries.length === 0) throw new ClickIdKeyError('click ID keyring needs at least one key')

  const keys = new Map<number, KeyObject>()
  for (const [keyId, secret] of entries) {
    assertKeyId(keyId)
    assertSecret(keyId, secret)
    // KeyObject keeps the secret out of logs and JSON.stringify.
    keys.set(keyId, createSecretKey(Buffer.from(secret, 'utf8')))
  }
  if (!keys.has(options.currentKeyId)) {
    throw new ClickIdKeyError(
      `current click ID key ${String(options.currentKeyId)} is not among the keys (${[...keys.keys()].join(', ')})`,
    )
  }
  return { currentKeyId: options.currentKeyId, keys }
}

/**
 * Parses the environment form `"<keyId>:<secret>,<keyId>:<secret>"`, e.g. `1:abc…,2:def…`.
 * A secret may contain ':' (only the first one separates) but not ','. Whitespace around
 * entries is ignored. Error messages name the entry by position and never repeat a secret.
 */
export function parseClickIdKeys(text: string): Map<number, string> {
  const keys = new Map<number, string>()
  const entries = text.split(',').map((entry) => entry.trim())
  if (entries.every((entry) => entry === '')) {
    throw new ClickIdKeyError('no click ID keys: expected "<keyId>:<secret>[,<keyId>:<secret>…]"')
  }
  entries.forEach((entry, index) => {
    const position = `entry ${index + 1}`
    const colon = entry.indexOf(':')
    if (colon < 0) throw new ClickIdKeyError(`${position}: expected "<keyId>:<secret>"`)
    const idText = entry.slice(0, colon).trim()
    if (!/^\d{1,3}$/.test(idText)) {
      throw new ClickIdKeyError(`${position}: key ID must be an integer 0–${MAX_CLICK_ID_KEY_ID}`)
    }
    const keyId = Number(idText)
    assertKeyId(keyId)
    if (keys.has(keyId)) throw new ClickIdKeyError(`${position}: key ID ${keyId} appears twice`)
    const secret = entry.slice(colon + 1)
    assertSecret(keyId, secret)
    keys.set(keyId, secret)
  })
  return keys
}

function toKeyId(text: string): number {
  if (!/^\d{1,3}$/.test(text)) {
    throw new ClickIdKeyError(`click ID key ID must be an integer 0–${MAX_CLICK_ID_KEY_ID}, got "${text}"`)
  }
  return Number(text)
}

function assertKeyId(keyId: number): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > MAX_CLICK_ID_KEY_ID) {
    throw new ClickIdKeyError(`click ID key ID must be an integer 0–${MAX_CLICK_ID_KEY_ID}, got ${String(keyId)}`)
  }
}

function assertSecret(keyId: number, secret: string): void {
  if (typeof secret !== 'string' || Buffer.byteLength(secret, 'utf8') < MIN_CLICK_ID_SECRET_BYTES) {
    throw new ClickIdKeyError(
      `click ID key ${keyId}: secret must be at least ${MIN_CLICK_ID_SECRET_BYTES} bytes`,
    )
  }
}

/**
 * The key every service uses when CLICK_ID_KEYS is not set outside production, so a click
 * signed by ingest verifies in the attributor. Public, hence forgeable: development only.
 */
export const DEVELOPMENT_CLICK_ID_KEYS = '1:clickjoin-development-key-do-not-use-in-production'
