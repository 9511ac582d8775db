import { mkdir, open, readdir, readFile, rename, stat, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { KafkaUnavailableError } from '@clickjoin/kafka'
import { processAlive } from '@clickjoin/service-runtime'
import { decodeRecord, encodeRecord, type JournalRecord, type StoredRecord } from './record.ts'

/** The journal holds INGEST_JOURNAL_MAX_BYTES of undelivered events: the event is refused (503). */
export class JournalFullError extends KafkaUnavailableError {
  override readonly name = 'JournalFullError'
}

/** The disk refused a write: the events of that group were not stored (503). */
export class JournalWriteError extends KafkaUnavailableError {
  override readonly name = 'JournalWriteError'
}

export interface JournalOptions {
  /** Owned by one process at a time (a lock file says which). */
  dir: string
  /** Undelivered bytes (headers included) beyond which appends are refused. */
  maxBytes: number
  /** A new segment file starts beyond this size; delivered segments are deleted whole. */
  segmentBytes: number
  now?: () => number
  log?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void }
}

export interface JournalPosition {
  segment: number
  offset: number
}

/** Records read for delivery, all from one segment, in append order. */
export interface JournalChunk {
  records: StoredRecord[]
  bytes: number
  /** Where the next read starts once these are delivered. */
  end: JournalPosition
}

export interface JournalStats {
  /** Events fsynced and not yet delivered, and their bytes on disk. */
  events: number
  bytes: number
  /** When the oldest undelivered event was appended (to within one delivery chunk). */
  oldestAppendedAtMs: number | undefined
}

export interface Journal {
  open(): Promise<void>
  /** Resolves once the record is fsynced (appends arriving together share one fsync). */
  append(record: JournalRecord): Promise<void>
  /** Anything appended (or being appended) that Kafka has not acknowledged yet. */
  hasUndelivered(): boolean
  /** The next undelivered records, or undefined when everything fsynced has been delivered. */
  read(maxRecords: number, maxBytes: number): Promise<JournalChunk | undefined>
  /** Kafka acknowledged `chunk`: the checkpoint moves past it (fsynced), emptied segments go. */
  markDelivered(chunk: JournalChunk): Promise<void>
  /** Resolves at the next fsynced append (or at once if something is waiting to be read). */
  appended(): Promise<void>
  stats(): JournalStats
  close(): Promise<void>
}

const SEGMENT_NAME = /^segment-(\d{16})\.log$/
const segmentFile = (dir: string, index: number) => path.join(dir, `segment-${String(index).padStart(16, '0')}.log`)
const READ_AHEAD_BYTES = 1024 * 1024

interface Segment {
  index: number
  /** Bytes fsynced (the file may briefly hold more while a group is being written). */
  size: number
}

interface PendingAppend {
  bytes: Buffer
  appendedAtMs: number
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * An append-only log of segment files with group commit: appends that arrive while one
 * write+fdatasync runs wait and go together in the next one, so a burst costs one fsync per
 * group, not per event. A checkpoint file (`delivered`, replaced atomically) says up to where
 * Kafka has acknowledged; on open, everything after it is scanned (a torn tail, never
 * acknowledged, is cut) and delivered again.
 */
export function createJournal(options: JournalOptions): Journal {
  const { dir, maxBytes, segmentBytes } = options
  const now = options.now ?? Date.now
  const log = options.log
  const lockFile = path.join(dir, 'lock')
  const checkpointFile = path.join(dir, 'delivered')

  let segments: Segment[] = []
  let writer: FileHandle | undefined
  let cursor: JournalPosition = { segment: 0, offset: 0 }
  let events = 0
  let bytes = 0
  let oldestAppendedAtMs: number | undefined
  let pending: PendingAppend[] = []
  let pendingBytes = 0
  /** Events handed to the disk but not yet fsynced (pending + the group being written). */
  let unsynced = 0
  let writing: Promise<void> | undefined
  let closed = true
  let waiters: Array<() => void> = []

  async function takeLock(): Promise<void> {
    for (;;) {
      try {
        await writeFile(lockFile, String(process.pid), { flag: 'wx' })
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim())
      if (holder > 0 && processAlive(holder)) {
        throw new Error(`the journal in ${dir} is in use by process ${holder}: give each ingest replica its own INGEST_JOURNAL_DIR`)
      }
      // Left by a process that is gone (kill -9): ours now.
      await unlink(lockFile).catch(() => undefined)
    }
  }

  async function syncDir(): Promise<void> {
    const handle = await open(dir, 'r')
    try {
      await handle.sync()
    } finally {
      await handle.close()
    }
  }

  async function readCheckpoint(): Promise<JournalPosition | undefined> {
    try {
      const saved = JSON.parse(await readFile(checkpointFile, 'utf8')) as Partial<JournalPosition>
      if (Number.isSafeInteger(saved.segment) && Number.isSafeInteger(saved.offset)) return saved as JournalPosition
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log?.error({ err }, 'journal checkpoint unreadable: delivering the whole journal again')
    }
    return undefined
  }

  async function writeCheckpoint(position: JournalPosition): Promise<void> {
    const tmp = `${checkpointFile}.tmp`
    const handle = await open(tmp, 'w')
    try {
      await handle.writeFile(JSON.stringify(position))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(tmp, checkpointFile)
    await syncDir()
  }

  /** Counts the valid records of a segment from `from`; cuts a torn or corrupt tail. */
  async function scan(segment: Segment, from: number, isLast: boolean): Promise<void> {
    const file = segmentFile(dir, segment.index)
    const handle = await open(file, 'r')
    let offset = from
    let buffer = Buffer.alloc(READ_AHEAD_BYTES)
    try {
      const size = (await handle.stat()).size
      let cutReason: string | undefined
      while (offset < size) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - offset), offset)
        const view = buffer.subarray(0, bytesRead)
        let at = 0
        for (;;) {
          const decoded = decodeRecord(view, at)
          if (!decoded.ok) {
            if (decoded.reason === 'corrupt') cutReason = 'corrupt'
            break
          }
          oldestAppendedAtMs ??= decoded.record.appendedAtMs
          events++
          bytes += decoded.bytes
          at += decoded.bytes
        }
        offset += at
        if (cutReason) break
        if (at === 0) {
          // One record larger than the buffer, or a torn record at the end of the file.
          const length = view.length >= 4 ? view.readUInt32LE(0) + 16 : Infinity
          if (offset + length > size) {
            cutReason = 'incomplete'
            break
          }
          buffer = Buffer.alloc(length)
        }
      }
      segment.size = offset
      if (offset < size) {
        const what = { segment: file, offset, bytesCut: size - offset, reason: cutReason ?? 'incomplete' }
        // An unfinished group at the very end was never fsynced, so never acknowledged.
        if (isLast && cutReason !== 'corrupt') log?.warn(what, 'journal: cut an unfinished write at the end (never acknowledged)')
        else log?.error(what, 'journal: cut a damaged segment; events after this point in it are lost')
      }
    } finally {
      await handle.close()
    }
    if (segment.size < (await stat(file)).size) await truncate(file, segment.size)
  }

  async function startSegment(index: number): Promise<void> {
    writer = await open(segmentFile(dir, index), 'a')
    segments.push({ index, size: 0 })
    await syncDir()
  }

  async function writeGroups(): Promise<void> {
    while (pending.length > 0) {
      const group = pending
      pending = []
      const groupBytes = pendingBytes
      pendingBytes = 0
      let last = segments[segments.length - 1]!
      try {
        if (last.size > 0 && last.size + groupBytes > segmentBytes) {
          await writer!.close()
          await startSegment(last.index + 1)
          last = segments[segments.length - 1]!
        }
        const data = group.length === 1 ? group[0]!.bytes : Buffer.concat(group.map((p) => p.bytes), groupBytes)
        const { bytesWritten } = await writer!.write(data)
        if (bytesWritten !== data.length) throw new Error(`short write: ${bytesWritten} of ${data.length} bytes`)
        await writer!.datasync()
      } catch (err) {
        // Put the file back to what was fsynced, so the next group does not follow a torn one.
        await writer!.truncate(last.size).catch(() => undefined)
        unsynced -= group.length
        const failure = new JournalWriteError(`the journal could not be written: ${(err as Error).message}`, { cause: err })
        log?.error({ err }, 'journal write failed')
        for (const p of group) p.reject(failure)
        continue
      }
      last.size += groupBytes
      if (events === 0) oldestAppendedAtMs = group[0]!.appendedAtMs
      events += group.length
      bytes += groupBytes
      unsynced -= group.length
      for (const p of group) p.resolve()
      const woken = waiters
      waiters = []
      for (const wake of woken) wake()
    }
  }

  function startWriting(): void {
    if (writing) return
    writing = writeGroups().finally(() => {
      writing = undefined
      // An append that came after the loop's last check (its caller resumed in between).
      if (pending.length > 0) startWriting()
    })
  }

  return {
    async open() {
      await mkdir(dir, { recursive: true })
      await takeLock()
      const indexes = (await readdir(dir))
        .map((name) => SEGMENT_NAME.exec(name)?.[1])
        .filter((m): m is string => m !== undefined)
        .map(Number)
        .sort((a, b) => a - b)
      const saved = await readCheckpoint()
      segments = []
      events = 0
      bytes = 0
      oldestAppendedAtMs = undefined
      cursor = { segment: indexes[0] ?? 0, offset: 0 }
      if (saved && indexes.includes(saved.segment)) cursor = saved
      else if (saved) cursor = { segment: indexes.find((i) => i > saved.segment) ?? saved.segment + 1, offset: 0 }
      for (const index of indexes) {
        if (index < cursor.segment) {
          await unlink(segmentFile(dir, index)) // delivered before the crash
          continue
        }
        const segment: Segment = { index, size: 0 }
        segments.push(segment)
        await scan(segment, index === cursor.segment ? cursor.offset : 0, index === indexes[indexes.length - 1])
      }
      // Appends always go to a fresh segment: recovered ones are only read.
      const next = Math.max(cursor.segment, (indexes[indexes.length - 1] ?? -1) + 1)
      if (events === 0) {
        // Everything was delivered: start clean.
        for (const segment of segments) await unlink(segmentFile(dir, segment.index))
        segments = []
        cursor = { segment: next, offset: 0 }
        await writeCheckpoint(cursor)
      }
      await startSegment(next)
      closed = false
    },

    append(record) {
      if (closed) return Promise.reject(new JournalWriteError('the journal is closed'))
      const appendedAtMs = now()
      const encoded = encodeRecord(record, appendedAtMs)
      if (bytes + pendingBytes + encoded.length > maxBytes) {
        return Promise.reject(new JournalFullError(`the journal is full (${maxBytes} bytes waiting for Kafka)`))
      }
      return new Promise<void>((resolve, reject) => {
        pending.push({ bytes: encoded, appendedAtMs, resolve, reject })
        pendingBytes += encoded.length
        unsynced++
        startWriting()
      })
    },

    hasUndelivered: () => events > 0 || unsynced > 0,

    async read(maxRecords, maxChunkBytes) {
      for (;;) {
        if (events === 0) return undefined
        const index = segments.findIndex((s) => s.index === cursor.segment)
        const segment = segments[index]
        if (!segment) return undefined
        if (cursor.offset >= segment.size) {
          const later = segments[index + 1]
          if (!later) return undefined
          cursor = { segment: later.index, offset: 0 }
          continue
        }
        const handle = await open(segmentFile(dir, segment.index), 'r')
        try {
          let want = Math.min(maxChunkBytes, segment.size - cursor.offset)
          for (;;) {
            const buffer = Buffer.alloc(want)
            const { bytesRead } = await handle.read(buffer, 0, want, cursor.offset)
            const records: StoredRecord[] = []
            let at = 0
            while (records.length < maxRecords) {
              const decoded = decodeRecord(buffer.subarray(0, bytesRead), at)
              if (!decoded.ok) break
              records.push(decoded.record)
              at += decoded.bytes
            }
            if (records.length === 0) {
              // A single record larger than the chunk: read it whole.
              const length = bytesRead >= 4 ? buffer.readUInt32LE(0) + 16 : 0
              if (length <= want || cursor.offset + length > segment.size) {
                throw new Error(`journal: unreadable record in ${segmentFile(dir, segment.index)} at ${cursor.offset}`)
              }
              want = length
              continue
            }
            oldestAppendedAtMs = records[0]!.appendedAtMs
            return { records, bytes: at, end: { segment: segment.index, offset: cursor.offset + at } }
          }
        } finally {
          await handle.close()
        }
      }
    },

    async markDelivered(chunk) {
      await writeCheckpoint(chunk.end)
      cursor = chunk.end
      events -= chunk.records.length
      bytes -= chunk.bytes
      // The next chunk's first record is younger than this one's last; until it is read, this is the bound.
      oldestAppendedAtMs = events > 0 ? chunk.records[chunk.records.length - 1]!.appendedAtMs : undefined
      const current = segments[segments.length - 1]!
      for (const segment of segments.filter((s) => s.index < cursor.segment && s !== current)) {
        await unlink(segmentFile(dir, segment.index))
      }
      segments = segments.filter((s) => s.index >= cursor.segment || s === current)
    },

    appended() {
      if (events > 0) return Promise.resolve()
      return new Promise<void>((resolve) => waiters.push(resolve))
    },

    stats: () => ({ events, bytes, oldestAppendedAtMs }),

    async close() {
      if (closed) return
      closed = true
      while (writing) await writing
      await writer?.close()
      writer = undefined
      const woken = waiters
      waiters = []
      for (const wake of woken) wake()
      await unlink(lockFile).catch(() => undefined)
    },
  }
}
