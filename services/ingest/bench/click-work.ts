/**
 * The per-click work of the two shared packages on ingest's click path, against what they
 * replaced, measured alternately in one process (µs per call, median of BENCH_ROUNDS rounds
 * with min–max): the click ID (generateClickId, its MAC in two JavaScript SHA-256 compressions,
 * vs the same ID with its MAC by two one-shot `crypto.hash` calls and, before that, by createHmac
 * with the KeyObject) and the click's encoding (encodeClick vs encodeEvent's check +
 * JSON.stringify).
 *
 *   node --import tsx services/ingest/bench/click-work.ts
 */
import { createHmac, createSecretKey, hash, randomFillSync } from 'node:crypto'
import { createClickIdKeyring, generateClickId, verifyClickId } from '@clickjoin/click-id'
import { clickV1Contract, encodeClick, encodeEvent, type ClickV1 } from '@clickjoin/contracts'

const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5)
const secret = 'bench-click-id-key-0123456789abcdef0123456789'
const keyring = createClickIdKeyring({ keys: { 1: secret }, currentKeyId: 1 })
const key = createSecretKey(Buffer.from(secret, 'utf8'))

/** The click ID as it was made before: the same bytes, its MAC through createHmac. */
function clickIdWithCreateHmac(nowMs: number): string {
  const bytes = Buffer.allocUnsafe(24)
  bytes[0] = 1
  bytes.writeUIntBE(nowMs, 1, 6)
  bytes.fill(7, 7, 17)
  createHmac('sha256', key).update(bytes.subarray(0, 17)).digest().copy(bytes, 17, 0, 7)
  return bytes.toString('base64url')
}

/** Stand-in for click-id's random pool: one 4 KiB fill, then 10-byte copies (the refill per 409 IDs is < 0.02 µs each). */
const randomSource = randomFillSync(Buffer.allocUnsafeSlow(4090))
let randomAt = 0

/** The HMAC pads as click-id kept them until branch `clickmac`, for the key above. */
const pads = (() => {
  const secretBytes = Buffer.from(secret, 'utf8')
  const inner = Buffer.alloc(64 + 17)
  const outer = Buffer.alloc(64 + 32)
  for (let i = 0; i < 64; i++) {
    inner[i] = (secretBytes[i] ?? 0) ^ 0x36
    outer[i] = (secretBytes[i] ?? 0) ^ 0x5c
  }
  return { inner, outer }
})()

/** The click ID as generateClickId made it until branch `clickmac`: its MAC by two one-shot hashes. */
function clickIdWithTwoHashes(nowMs: number): string {
  const bytes = Buffer.allocUnsafe(24)
  bytes[0] = 1
  bytes.writeUIntBE(nowMs, 1, 6)
  randomSource.copy(bytes, 7, randomAt, randomAt + 10)
  randomAt = (randomAt + 10) % randomSource.length
  bytes.copy(pads.inner, 64, 0, 17)
  hash('sha256', pads.inner, 'buffer').copy(pads.outer, 64)
  hash('sha256', pads.outer, 'buffer').copy(bytes, 17, 0, 7)
  return bytes.toString('base64url')
}

// The references make the same IDs: each must verify under the keyring's key.
for (const reference of [clickIdWithCreateHmac, clickIdWithTwoHashes]) {
  if (!verifyClickId(keyring, reference(Date.now())).valid) throw new Error(`${reference.name} makes IDs that do not verify`)
}

const click: ClickV1 = {
  v: 1,
  click_id: generateClickId(keyring),
  ts: Date.now(),
  campaign_id: 'bench',
  publisher_id: 'p1',
  sub1: 's1',
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: '',
  source: '',
  creative: '',
  user_key: '',
  ip: '127.0.0.0',
  user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
  referer: '',
  destination: 'https://shop.example/landing?click_id=AQGQ2y3xAAECAwQFBgcICQoLDA0ODxAR&pub=p1',
  is_bot: false,
  is_duplicate: false,
  window_seconds: 2_592_000,
  max_window_seconds: 2_592_000,
}

function usPerCall(run: () => unknown, calls = 200_000): number {
  for (let i = 0; i < 20_000; i++) run()
  const start = process.hrtime.bigint()
  for (let i = 0; i < calls; i++) run()
  return Number(process.hrtime.bigint() - start) / calls / 1000
}

const cases: Record<string, () => unknown> = {
  'click ID, createHmac (before edgecpu3)': () => clickIdWithCreateHmac(Date.now()),
  'click ID, two crypto.hash (before clickmac)': () => clickIdWithTwoHashes(Date.now()),
  'click ID, generateClickId': () => generateClickId(keyring, Date.now()),
  'encodeEvent(clickV1Contract, …) (before)': () => encodeEvent(clickV1Contract, { ...click, ts: click.ts + 1 }),
  'encodeClick': () => encodeClick({ ...click, ts: click.ts + 1 }),
}
const results = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]))
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(cases)) results.get(name)!.push(usPerCall(run))
}
for (const [name, values] of results) {
  const sorted = [...values].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)]!
  console.log(`${name.padEnd(44)} ${median.toFixed(2)} µs (${sorted[0]!.toFixed(2)}–${sorted.at(-1)!.toFixed(2)})`)
}
