import { appendFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createJournal, JournalFullError, type Journal } from './journal.ts'
import { decodeRecord, encodeRecord } from './record.ts'

const dirs: string[] = []
const journals: Journal[] = []
afterEach(async () => {
  for (const j of journals.splice(0)) await j.close()
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

async function newDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'journal-test-'))
  dirs.push(dir)
  return dir
}

async function openJournal(dir: string, overrides: { maxBytes?: number; segmentBytes?: number; now?: () => number } = {}) {
  const journal = createJournal({ dir, maxBytes: overrides.maxBytes ?? 1024 ** 2, segmentBytes: overrides.segmentBytes ?? 64 * 1024, ...(overrides.now ? { now: overrides.now } : {}) })
  await journal.open()
  journals.push(journal)
  return journal
}

const record = (i: number) => ({ topic: 'p_clicks', key: `click-${i}`, value: Buffer.from(JSON.stringify({ v: 1, click_id: `click-${i}`, n: i })) })

async function drain(journal: Journal, maxRecords = 7): Promise<string[]> {
  const keys: string[] = []
  for (;;) {
    const chunk = await journal.read(maxRecords, 4096)
    if (!chunk) return keys
    keys.push(...chunk.records.map((r) => r.key))
    await journal.markDelivered(chunk)
  }
}

describe('journal record', () => {
  it('round-trips topic, key, value and time; a flipped byte or a cut tail is caught', () => {
    const buf = encodeRecord({ topic: 't', key: 'ключ', value: Buffer.from('{"a":1}') }, 1_700_000_000_123)
    const decoded = decodeRecord(buf, 0)
    expect(decoded).toMatchObject({ ok: true, bytes: buf.length, record: { topic: 't', key: 'ключ', appendedAtMs: 1_700_000_000_123 } })
    expect(decoded.ok && decoded.record.value.toString()).toBe('{"a":1}')
    const flipped = Buffer.from(buf)
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 2) ^ 1, flipped.length - 2)
    expect(decodeRecord(flipped, 0)).toEqual({ ok: false, reason: 'corrupt' })
    expect(decodeRecord(buf.subarray(0, buf.length - 1), 0)).toEqual({ ok: false, reason: 'incomplete' })
  })
})

describe('journal', () => {
  it('delivers in append order, across segments, and deletes delivered segments', async () => {
    const dir = await newDir()
    const journal = await openJournal(dir, { segmentBytes: 1024 })
    await Promise.all(Array.from({ length: 50 }, (_, i) => journal.append(record(i))))
    for (let i = 50; i < 100; i++) await journal.append(record(i))
    expect(journal.stats().events).toBe(100)
    expect((await readdir(dir)).filter((f) => f.startsWith('segment-')).length).toBeGreaterThan(3)
    expect(await drain(journal)).toEqual(Array.from({ length: 100 }, (_, i) => `click-${i}`))
    expect(journal.stats()).toEqual({ events: 0, bytes: 0, oldestAppendedAtMs: undefined })
    expect(journal.hasUndelivered()).toBe(false)
    expect((await readdir(dir)).filter((f) => f.startsWith('segment-')).length).toBe(1)
  })

  it('after a restart, delivers exactly what was not delivered, in order', async () => {
    const dir = await newDir()
    const first = await openJournal(dir, { segmentBytes: 2048 })
    for (let i = 0; i < 40; i++) await first.append(record(i))
    const chunk = await first.read(15, 1 << 20)
    await first.markDelivered(chunk!)
    await first.close()
    journals.length = 0

    const second = await openJournal(dir, { segmentBytes: 2048 })
    expect(second.stats().events).toBe(25)
    await second.append(record(40))
    expect(await drain(second)).toEqual(Array.from({ length: 26 }, (_, i) => `click-${i + 15}`))
  })

  it('cuts a torn write at the end (a crash before the fsync) and keeps everything before it', async () => {
    const dir = await newDir()
    const first = await openJournal(dir)
    for (let i = 0; i < 5; i++) await first.append(record(i))
    await first.close()
    journals.length = 0
    const segment = (await readdir(dir)).filter((f) => f.startsWith('segment-')).sort().at(-1)!
    const torn = encodeRecord(record(5), Date.now()).subarray(0, 20)
    await appendFile(path.join(dir, segment), torn)
    const sizeBefore = (await stat(path.join(dir, segment))).size

    const second = await openJournal(dir)
    expect(second.stats().events).toBe(5)
    expect((await stat(path.join(dir, segment))).size).toBe(sizeBefore - torn.length)
    expect(await drain(second)).toEqual(['click-0', 'click-1', 'click-2', 'click-3', 'click-4'])
  })

  it('refuses appends beyond maxBytes with JournalFullError, and takes them again once delivered', async () => {
    const dir = await newDir()
    const size = encodeRecord(record(0), 0).length
    const journal = await openJournal(dir, { maxBytes: size * 3 })
    for (let i = 0; i < 3; i++) await journal.append(record(i))
    await expect(journal.append(record(3))).rejects.toBeInstanceOf(JournalFullError)
    expect(journal.stats().events).toBe(3)
    await drain(journal)
    await journal.append(record(4))
    expect(await drain(journal)).toEqual(['click-4'])
  })

  it('reports the oldest undelivered event', async () => {
    let clock = 1_000_000
    const journal = await openJournal(await newDir(), { now: () => clock })
    await journal.append(record(0))
    clock += 5_000
    await journal.append(record(1))
    expect(journal.stats().oldestAppendedAtMs).toBe(1_000_000)
    const chunk = await journal.read(1, 1 << 20)
    await journal.markDelivered(chunk!)
    await journal.read(1, 1 << 20)
    expect(journal.stats().oldestAppendedAtMs).toBe(1_005_000)
  })

  it('belongs to one live process: a second open of the same directory is refused, a dead holder is not', async () => {
    const dir = await newDir()
    await openJournal(dir)
    await expect(createJournal({ dir, maxBytes: 1024, segmentBytes: 1024 }).open()).rejects.toThrow(/in use by process/)
    await journals.pop()!.close()
    await writeFile(path.join(dir, 'lock'), '999999999') // a pid that does not exist
    await openJournal(dir)
  })
})
