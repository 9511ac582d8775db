import { describe, expect, it } from 'vitest'
import { expandDestination, templateHostIsFixed, UnsafeDestinationError, type MacroValues } from './destination.ts'

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
