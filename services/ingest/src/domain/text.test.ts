import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { truncateText, wellFormed } from './text.ts'

/** What wellFormed did before the native methods: every lone surrogate replaced by U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
const byPattern = (text: string) => text.replace(LONE_SURROGATE, '\uFFFD')

/** Any UTF-16 text, lone and paired surrogates included. */
const utf16 = fc.array(fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0xd7f0, max: 0xe010 })), { maxLength: 40 })
  .map((units) => String.fromCharCode(...units))

describe('wellFormed', () => {
  it('replaces exactly the lone surrogates with U+FFFD, as the pattern did', () => {
    fc.assert(
      fc.property(utf16, (text) => {
        expect(wellFormed(text)).toBe(byPattern(text))
      }),
      { numRuns: 5_000 },
    )
    expect(wellFormed('a\ud800b\udc00c\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ud83d\ude00')
  })

  it('encodeURIComponent takes whatever it returns', () => {
    fc.assert(
      fc.property(utf16, (text) => {
        encodeURIComponent(wellFormed(text))
      }),
      { numRuns: 2_000 },
    )
  })
})

describe('truncateText', () => {
  it('cuts to the length and leaves no lone surrogate where it cut', () => {
    expect(truncateText('ab\ud83d\ude00', 3)).toBe('ab\ufffd')
    expect(truncateText(undefined, 3)).toBe('')
    expect(truncateText('abc', 5)).toBe('abc')
  })
})
