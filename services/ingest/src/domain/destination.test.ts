import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { expandDestination, templateHostIsFixed, UnsafeDestinationError, type DestinationTemplate, type MacroValues } from './destination.ts'

const values: MacroValues = {
  click_id: 'CID_123-x',
  campaign_id: 'camp',
  pub: 'pub 1',
  sub1: 'a&b=c',
  sub2: '',
  sub3: '',
  sub4: '',
  sub5: '',
  src: 'é/?#',
  cr: '',
}
const campaign = (destination: string, passthrough = false) => ({ destination, click_id_param: 'click_id', passthrough })

describe('expandDestination', () => {
  it('replaces every macro with its URL-encoded value', () => {
    expect(
      expandDestination(campaign('https://shop.example/p/{campaign_id}?c={click_id}&pub={pub}&s1={sub1}&src={src}&cr={cr}'), values),
    ).toBe('https://shop.example/p/camp?c=CID_123-x&pub=pub%201&s1=a%26b%3Dc&src=%C3%A9%2F%3F%23&cr=')
  })

  it('appends the click ID as click_id_param when the template has no {click_id}, before the fragment', () => {
    expect(expandDestination(campaign('https://shop.example/land'), values)).toBe('https://shop.example/land?click_id=CID_123-x')
    expect(expandDestination(campaign('https://shop.example/land?a=1#top'), values)).toBe(
      'https://shop.example/land?a=1&click_id=CID_123-x#top',
    )
    expect(
      expandDestination({ destination: 'https://shop.example/?', click_id_param: 'aff_click', passthrough: false }, values),
    ).toBe('https://shop.example/?aff_click=CID_123-x')
  })

  it('passes other parameters through only when the campaign allows it', () => {
    const extra = [['utm_source', 'x y'] as const, ['next', '//evil.example'] as const]
    expect(expandDestination(campaign('https://shop.example/?c={click_id}'), values, extra)).toBe('https://shop.example/?c=CID_123-x')
    expect(expandDestination(campaign('https://shop.example/?c={click_id}', true), values, extra)).toBe(
      'https://shop.example/?c=CID_123-x&utm_source=x%20y&next=%2F%2Fevil.example',
    )
  })

  it('never leaves the template host, whatever the values', () => {
    for (const evil of ['//evil.example', 'https://evil.example', '\\\\evil.example', '@evil.example', 'javascript:alert(1)']) {
      const v = { ...values, pub: evil, sub1: evil }
      expect(new URL(expandDestination(campaign('https://shop.example/{pub}?x={sub1}'), v)).origin).toBe('https://shop.example')
      expect(() => expandDestination(campaign('https://shop.example{pub}'), v)).toThrow(UnsafeDestinationError)
    }
  })

  it('refuses a template whose host is a macro', () => {
    expect(templateHostIsFixed('https://{pub}.example/')).toBe(false)
    expect(templateHostIsFixed('https://shop.example/{pub}')).toBe(true)
    expect(() => expandDestination(campaign('https://{pub}/'), { ...values, pub: 'evil.example' })).toThrow(UnsafeDestinationError)
  })

  it('turns lone surrogates into U+FFFD instead of throwing', () => {
    expect(expandDestination(campaign('https://shop.example/?p={pub}'), { ...values, pub: '\ud800x' })).toBe(
      'https://shop.example/?p=%EF%BF%BDx&click_id=CID_123-x',
    )
  })
})

/**
 * expandDestination as it was before templates were compiled (a pattern replace per click): the
 * compiled one must give the same URL, or refuse the same way, for any template and values.
 */
function expandByReplace(campaign: DestinationTemplate, values: MacroValues, passthrough: ReadonlyArray<readonly [string, string]>): string {
  const MACRO = /\{(click_id|campaign_id|pub|sub[1-5]|src|cr)\}/g
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g
  const wf = (text: string) => text.replace(lone, '\uFFFD')
  const parse = (text: string) => {
    try {
      const url = new URL(text)
      return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
    } catch {
      return undefined
    }
  }
  let placed = false
  let url = campaign.destination.replace(MACRO, (_m, name: keyof MacroValues) => {
    if (name === 'click_id') placed = true
    return encodeURIComponent(wf(values[name]))
  })
  const extra: Array<readonly [string, string]> = []
  if (!placed) extra.push([campaign.click_id_param, values.click_id])
  if (campaign.passthrough) extra.push(...passthrough)
  if (extra.length > 0) {
    const hashAt = url.indexOf('#')
    const base = hashAt === -1 ? url : url.slice(0, hashAt)
    const fragment = hashAt === -1 ? '' : url.slice(hashAt)
    const query = extra.map(([k, v]) => `${encodeURIComponent(wf(k))}=${encodeURIComponent(wf(v))}`).join('&')
    const separator = !base.includes('?') ? '?' : base.endsWith('?') || base.endsWith('&') ? '' : '&'
    url = `${base}${separator}${query}${fragment}`
  }
  const final = parse(url)
  const expected = templateHostIsFixed(campaign.destination) ? parse(campaign.destination.replace(MACRO, ''))?.origin : undefined
  if (final === undefined || expected === undefined || final.origin !== expected) throw new UnsafeDestinationError('leaves the host')
  return final.href
}

describe('expandDestination (compiled templates)', () => {
  const macro = fc.constantFrom('{click_id}', '{campaign_id}', '{pub}', '{sub1}', '{sub5}', '{src}', '{cr}', '{sub6}', '{', '}')
  const piece = fc.oneof(macro, fc.constantFrom('/', '?', '&', '=', '#', 'a', '%20', 'é', '\ud800', ' '), fc.string({ maxLength: 4 }))
  const template = fc
    .tuple(fc.constantFrom('https://shop.example', 'http://shop.example:8080', 'https://{pub}.example', 'ftp://x', 'https://a{sub1}'), fc.array(piece, { maxLength: 12 }))
    .map(([origin, pieces]) => origin + pieces.join(''))
  const text = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', '//evil.example', 'a&b=c', '\ud800x', 'é/?#'))
  const valuesArb = fc.record({
    click_id: text, campaign_id: text, pub: text, sub1: text, sub2: text, sub3: text, sub4: text, sub5: text, src: text, cr: text,
  })
  const extra = fc.array(fc.tuple(text, text), { maxLength: 3 })

  it('gives the URL the pattern replace gave, or refuses where it refused, for any template and values', () => {
    fc.assert(
      fc.property(template, fc.boolean(), valuesArb, extra, (destination, passthrough, values, params) => {
        const campaign = { destination, click_id_param: 'click_id', passthrough }
        let expected: string | Error
        try {
          expected = expandByReplace(campaign, values, params)
        } catch (err) {
          expected = err as Error
        }
        if (expected instanceof Error) expect(() => expandDestination(campaign, values, params)).toThrow(UnsafeDestinationError)
        else expect(expandDestination(campaign, values, params)).toBe(expected)
      }),
      { numRuns: 5_000 },
    )
  })
})
