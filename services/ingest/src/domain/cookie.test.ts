import { describe, expect, it } from 'vitest'
import { readCookie } from './cookie.ts'

describe('readCookie', () => {
  it('finds the named cookie among others, first occurrence winning', () => {
    expect(readCookie('a=1; cj_cid=AQGi-x_9; b=2', 'cj_cid')).toBe('AQGi-x_9')
    expect(readCookie('cj_cid=first;cj_cid=second', 'cj_cid')).toBe('first')
    expect(readCookie('  cj_cid = spaced ', 'cj_cid')).toBe('spaced')
  })

  it('percent-decodes, keeping an invalid escape as it is', () => {
    expect(readCookie('cj_cid=a%20b', 'cj_cid')).toBe('a b')
    expect(readCookie('cj_cid=100%', 'cj_cid')).toBe('100%')
  })

  it('is undefined without the cookie, for a longer name that contains it, or without a header', () => {
    expect(readCookie(undefined, 'cj_cid')).toBeUndefined()
    expect(readCookie('', 'cj_cid')).toBeUndefined()
    expect(readCookie('x_cj_cid=1; cj_cid_old=2', 'cj_cid')).toBeUndefined()
    expect(readCookie('cj_cid', 'cj_cid')).toBeUndefined()
  })

  it('reads an empty value as empty', () => {
    expect(readCookie('cj_cid=; a=1', 'cj_cid')).toBe('')
  })
})
