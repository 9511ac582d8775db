import { describe, expect, it } from 'vitest'
import { ClickWindow, visitorKey } from './duplicate-clicks.ts'

/** Flags of clicks of one visitor at these seconds, each remembered once recorded. */
function flags(seconds: number[], window = new ClickWindow(60_000)): boolean[] {
  return seconds.map((s) => {
    const duplicate = window.isDuplicate('visitor', s * 1000)
    window.remember('visitor', s * 1000)
    return duplicate
  })
}

describe('sliding duplicate-click window', () => {
  it.each([
    { clicks: [0, 50, 70], expected: [false, true, true], why: 'each click extends the window: 70 is 20 s after 50' },
    { clicks: [0, 59.999, 119.998], expected: [false, true, true], why: 'just inside, twice' },
    { clicks: [0, 60], expected: [false, false], why: 'exactly 60 s later is a new click' },
    { clicks: [0, 61, 200], expected: [false, false, false], why: 'gaps longer than the window' },
  ])('$clicks → $expected ($why)', ({ clicks, expected }) => {
    expect(flags(clicks)).toEqual(expected)
  })

  it('a click that was not recorded (answered 503) does not count: its retry is not a duplicate', () => {
    const window = new ClickWindow(60_000)
    expect(window.isDuplicate('visitor', 0)).toBe(false) // refused: never remembered
    expect(window.isDuplicate('visitor', 5_000)).toBe(false)
  })

  it('an older time from another replica never moves a key back; expire forgets only old keys', () => {
    const window = new ClickWindow(60_000)
    window.remember('a', 10_000)
    window.remember('b', 30_000)
    window.remember('a', 5_000)
    expect(window.isDuplicate('a', 69_999)).toBe(true)
    window.expire(80_000)
    expect(window.size).toBe(1)
    expect(window.isDuplicate('b', 80_000)).toBe(true)
  })

  it('keys differ by campaign, IP and user agent, and carry none of them', () => {
    const keys = [visitorKey('c', '1.2.3.4', 'ua'), visitorKey('d', '1.2.3.4', 'ua'), visitorKey('c', '1.2.3.5', 'ua'), visitorKey('c', '1.2.3.4', 'ub')]
    expect(new Set(keys).size).toBe(4)
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })
})
