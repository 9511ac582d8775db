import { describe, expect, it } from 'vitest'
import { outcomeFixture } from './fixtures.ts'
import { expandPostbackUrl, postbackBody, postbackFields } from './macros.ts'

describe('expandPostbackUrl', () => {
  const fields = postbackFields(outcomeFixture())

  it('replaces every macro with its URL-encoded value', () => {
    const template =
      'https://t.example/pb/{pub}?c={click_id}&cv={conversion_id}&t={txn_id}&e={event}&s={status}&p={payout}&r={revenue}' +
      '&cur={currency}&cmp={campaign_id}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}&ts={ts}'
    const url = new URL(expandPostbackUrl(template, fields))
    expect(url.pathname).toBe('/pb/pub7')
    expect(Object.fromEntries(url.searchParams)).toEqual({
      c: 'clk_AbC-123',
      cv: 'cv_1',
      t: 'order 42/β',
      e: 'purchase',
      s: 'approved',
      p: '5',
      r: '49.9',
      cur: 'EUR',
      cmp: 'summer',
      s1: 'their click&id=1',
      s2: '',
      s3: 's3',
      s4: '',
      s5: 'ü',
      ts: '1700000123',
    })
    expect(expandPostbackUrl('https://x/?a={sub1}', fields)).toBe('https://x/?a=their%20click%26id%3D1')
  })

  it('leaves unknown macros as written and does not expand twice', () => {
    const tricky = postbackFields(outcomeFixture({ sub1: '{click_id}' }))
    expect(expandPostbackUrl('https://x/?a={sub1}&b={nope}&v={version}', tricky)).toBe('https://x/?a=%7Bclick_id%7D&b={nope}&v={version}')
  })
})

describe('postbackBody', () => {
  it('is the fields as JSON for POST and empty for GET', () => {
    const fields = postbackFields(outcomeFixture())
    expect(postbackBody('GET', fields)).toBe('')
    expect(JSON.parse(postbackBody('POST', fields))).toMatchObject({ conversion_id: 'cv_1', version: 1, pub: 'pub7', ts: 1700000123, payout: '5' })
  })
})
