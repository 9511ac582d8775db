/**
 * Redis Cluster hash slots, as the server computes them (cluster spec: CRC16-XMODEM of the key,
 * or of its hash tag, modulo 16384). Pure: planning code can group a batch by slot without
 * asking Redis.
 */
export const SLOT_COUNT = 16_384

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] ?? 0)
  return crc
}

/**
 * The part of a key that decides its slot: the text between the first `{` and the next `}`
 * when that is not empty, else the whole key.
 */
export function hashedPart(key: string | Buffer): Buffer {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key
  const open = bytes.indexOf(0x7b) // {
  if (open === -1) return bytes
  const close = bytes.indexOf(0x7d, open + 1) // }
  if (close === -1 || close === open + 1) return bytes
  return bytes.subarray(open + 1, close)
}

/** The hash slot of a key, equal to `CLUSTER KEYSLOT key`. */
export function keySlot(key: string | Buffer): number {
  return crc16(hashedPart(key)) % SLOT_COUNT
}

/**
 * `{value}`: keys that contain the same tag share a hash slot, so one script or MULTI may touch
 * them all in a cluster. A value with a brace would end the tag early (and silently move keys
 * to another slot), and an empty one is ignored by Redis: both are refused.
 */
export function hashTag(value: string): string {
  if (value === '') throw new Error('a Redis hash tag cannot be empty (Redis would hash the whole key)')
  if (/[{}]/.test(value)) throw new Error(`a Redis hash tag cannot contain braces: ${JSON.stringify(value)}`)
  return `{${value}}`
}

/**
 * The items of a batch grouped by the slot of their key, each group in batch order; groups in
 * order of first appearance. One script call or MULTI per group is what a cluster allows.
 */
export function groupBySlot<T>(items: Iterable<T>, keyOf: (item: T) => string): Map<number, T[]> {
  const groups = new Map<number, T[]>()
  for (const item of items) {
    const slot = keySlot(keyOf(item))
    const group = groups.get(slot)
    if (group) group.push(item)
    else groups.set(slot, [item])
  }
  return groups
}
