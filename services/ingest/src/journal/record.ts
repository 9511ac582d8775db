import { crc32 } from 'node:zlib'

/** One event waiting in the journal for Kafka: where it goes and its bytes as Kafka will get them. */
export interface JournalRecord {
  topic: string
  key: string
  value: Buffer
}

/** A record read back, with when it was appended (for the oldest-age metric). */
export interface StoredRecord extends JournalRecord {
  appendedAtMs: number
}

/**
 * On disk, each record is a header and a payload:
 *
 *   u32 payload length | u32 CRC-32 of (appended-at + payload) | f64 appended-at (ms) | payload
 *   payload = u16 topic length | topic | u16 key length | key | value
 *
 * The checksum finds a torn write at the tail after a crash (the group was not yet fsynced,
 * so it was never acknowledged): recovery cuts the segment there.
 */
export const RECORD_HEADER_BYTES = 16
const MAX_FIELD_BYTES = 0xffff

export function encodeRecord(record: JournalRecord, appendedAtMs: number): Buffer {
  const topic = Buffer.from(record.topic, 'utf8')
  const key = Buffer.from(record.key, 'utf8')
  if (topic.length > MAX_FIELD_BYTES || key.length > MAX_FIELD_BYTES) throw new Error('journal record: topic or key longer than 65,535 bytes')
  const payloadLength = 2 + topic.length + 2 + key.length + record.value.length
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payloadLength)
  buf.writeUInt32LE(payloadLength, 0)
  buf.writeDoubleLE(appendedAtMs, 8)
  let at = RECORD_HEADER_BYTES
  at = buf.writeUInt16LE(topic.length, at)
  at += topic.copy(buf, at)
  at = buf.writeUInt16LE(key.length, at)
  at += key.copy(buf, at)
  record.value.copy(buf, at)
  buf.writeUInt32LE(crc32(buf.subarray(8)), 4)
  return buf
}

export type DecodedRecord =
  | { ok: true; record: StoredRecord; bytes: number }
  /** `incomplete`: the buffer ends inside the record (read more, or a torn tail). */
  | { ok: false; reason: 'incomplete' | 'corrupt' }

/** Reads the record that starts at `offset` of `buf`. */
export function decodeRecord(buf: Buffer, offset: number): DecodedRecord {
  if (buf.length - offset < RECORD_HEADER_BYTES) return { ok: false, reason: 'incomplete' }
  const payloadLength = buf.readUInt32LE(offset)
  const end = offset + RECORD_HEADER_BYTES + payloadLength
  if (payloadLength < 4) return { ok: false, reason: 'corrupt' }
  if (end > buf.length) return { ok: false, reason: 'incomplete' }
  if (crc32(buf.subarray(offset + 8, end)) !== buf.readUInt32LE(offset + 4)) return { ok: false, reason: 'corrupt' }
  const appendedAtMs = buf.readDoubleLE(offset + 8)
  let at = offset + RECORD_HEADER_BYTES
  const topicLength = buf.readUInt16LE(at)
  at += 2
  const topic = buf.toString('utf8', at, at + topicLength)
  at += topicLength
  if (at + 2 > end) return { ok: false, reason: 'corrupt' }
  const keyLength = buf.readUInt16LE(at)
  at += 2
  if (at + keyLength > end) return { ok: false, reason: 'corrupt' }
  const key = buf.toString('utf8', at, at + keyLength)
  at += keyLength
  // A copy: the read buffer is reused for the next chunk.
  const value = Buffer.from(buf.subarray(at, end))
  return { ok: true, record: { topic, key, value, appendedAtMs }, bytes: end - offset }
}
