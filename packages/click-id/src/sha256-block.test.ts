import { createHmac, hash, randomBytes, randomInt } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  HMAC_SHA256_MAX_SHORT_MESSAGE_BYTES,
  SHA256_INITIAL_STATE,
  hmacSha256PadStates,
  sha256Compress,
  writeShortHmacSha256,
} from './sha256-block.ts'

/** SHA-256 of a message of at most 55 bytes, padded by hand into one block. */
function sha256OfOneBlock(message: Buffer): string {
  const block = Buffer.alloc(64)
  message.copy(block)
  block[message.length] = 0x80
  block.writeUInt32BE(message.length * 8, 60)
  const schedule = new Int32Array(64)
  for (let word = 0; word < 16; word++) schedule[word] = block.readInt32BE(4 * word)
  const state = new Int32Array(8)
  sha256Compress(SHA256_INITIAL_STATE, schedule, state)
  const digest = Buffer.alloc(32)
  state.forEach((word, i) => digest.writeInt32BE(word, 4 * i))
  return digest.toString('hex')
}

function shortHmac(key: Buffer, message: Buffer, macLength = 32): Buffer {
  const mac = Buffer.alloc(macLength)
  writeShortHmacSha256(hmacSha256PadStates(key), message, message.length, mac, 0, macLength)
  return mac
}

describe('sha256Compress', () => {
  it('gives the FIPS 180-2 digests of "abc" and of the empty message', () => {
    expect(sha256OfOneBlock(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    expect(sha256OfOneBlock(Buffer.alloc(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })

  it("equals node's SHA-256 for random one-block messages", () => {
    for (let i = 0; i < 2_000; i++) {
      const message = randomBytes(randomInt(0, 56))
      expect(sha256OfOneBlock(message)).toBe(hash('sha256', message, 'hex'))
    }
  })
})

describe('writeShortHmacSha256', () => {
  // RFC 4231 §4; test case 7 has a 152-byte message, more than one block, so it is not here.
  const rfc4231: { name: string; key: Buffer; data: Buffer; mac: string }[] = [
    {
      name: 'test case 1',
      key: Buffer.alloc(20, 0x0b),
      data: Buffer.from('Hi There'),
      mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    },
    {
      name: 'test case 2 (a key shorter than the output)',
      key: Buffer.from('Jefe'),
      data: Buffer.from('what do ya want for nothing?'),
      mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    },
    {
      name: 'test case 3',
      key: Buffer.alloc(20, 0xaa),
      data: Buffer.alloc(50, 0xdd),
      mac: '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe',
    },
    {
      name: 'test case 4',
      key: Buffer.from(Array.from({ length: 25 }, (_, i) => i + 1)),
      data: Buffer.alloc(50, 0xcd),
      mac: '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
    },
    {
      name: 'test case 5 (truncated to 128 bits)',
      key: Buffer.alloc(20, 0x0c),
      data: Buffer.from('Test With Truncation'),
      mac: 'a3b6167473100ee06e0c796c2955552b',
    },
    {
      name: 'test case 6 (a key longer than a block, hashed first)',
      key: Buffer.alloc(131, 0xaa),
      data: Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'),
      mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
    },
  ]

  it.each(rfc4231)('gives the RFC 4231 HMAC-SHA-256 of $name', ({ key, data, mac }) => {
    expect(shortHmac(key, data, mac.length / 2).toString('hex')).toBe(mac)
  })

  it("equals createHmac on random 17-byte messages under random keys of 0 to 200 bytes", () => {
    for (const keyLength of [0, 1, 31, 32, 63, 64, 65, 100, 200]) {
      for (let k = 0; k < 20; k++) {
        const key = randomBytes(keyLength)
        const pads = hmacSha256PadStates(key)
        const mac = Buffer.alloc(32)
        for (let i = 0; i < 200; i++) {
          const message = randomBytes(17)
          writeShortHmacSha256(pads, message, 17, mac, 0, 32)
          const expected = createHmac('sha256', key).update(message).digest()
          if (!mac.equals(expected)) {
            throw new Error(`key ${key.toString('hex')}, message ${message.toString('hex')}: ${mac.toString('hex')}`)
          }
        }
      }
    }
  })

  it('equals createHmac for every length that fits a block, and for every prefix of the MAC', () => {
    const key = randomBytes(40)
    for (let length = 0; length <= HMAC_SHA256_MAX_SHORT_MESSAGE_BYTES; length++) {
      for (let i = 0; i < 50; i++) {
        const message = randomBytes(length)
        const expected = createHmac('sha256', key).update(message).digest()
        const macLength = randomInt(0, 33)
        expect(shortHmac(key, message, macLength).equals(expected.subarray(0, macLength))).toBe(true)
      }
    }
  })

  it('writes the MAC right after the message it covers in the same buffer, and nothing else', () => {
    const key = randomBytes(32)
    const bytes = randomBytes(30)
    const before = Buffer.from(bytes)
    writeShortHmacSha256(hmacSha256PadStates(key), bytes, 17, bytes, 17, 7)
    const expected = createHmac('sha256', key).update(before.subarray(0, 17)).digest()
    expect(bytes.subarray(0, 17).equals(before.subarray(0, 17))).toBe(true)
    expect(bytes.subarray(17, 24).equals(expected.subarray(0, 7))).toBe(true)
    expect(bytes.subarray(24).equals(before.subarray(24))).toBe(true)
  })

  it('refuses a message longer than one block can carry, or more bytes than the MAC has', () => {
    const pads = hmacSha256PadStates(randomBytes(32))
    const out = Buffer.alloc(64)
    expect(() => writeShortHmacSha256(pads, Buffer.alloc(56), 56, out, 0, 32)).toThrow(/covers 0\.\.55 bytes, got 56/)
    expect(() => writeShortHmacSha256(pads, Buffer.alloc(17), -1, out, 0, 32)).toThrow(/covers 0\.\.55 bytes, got -1/)
    expect(() => writeShortHmacSha256(pads, Buffer.alloc(10), 11, out, 0, 32)).toThrow(/11 is more than the 10 bytes given/)
    expect(() => writeShortHmacSha256(pads, Buffer.alloc(17), 17, out, 0, 33)).toThrow(/has 32 bytes, asked for 33/)
    expect(out.equals(Buffer.alloc(64))).toBe(true)
  })
})
