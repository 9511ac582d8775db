import { describe, expect, it } from 'vitest'
import { insertSettingAsideRefused, isRefusedForContent } from './refused-rows.ts'

const refusal = (type: string) => Object.assign(new Error(`refused (${type})`), { type })

describe('insertSettingAsideRefused', () => {
  it('stores every row but the refused ones, each part under its own token, and returns the refused with the reason', async () => {
    const stored: string[] = []
    const tokens: string[] = []
    const refused = await insertSettingAsideRefused(['a', 'bad1', 'c', 'd', 'bad2'], 'T', async (part, token) => {
      tokens.push(token)
      if (part.some((r) => r.startsWith('bad'))) throw refusal('VIOLATED_CONSTRAINT')
      stored.push(...part)
    })
    expect(refused.map((r) => r.row)).toEqual(['bad1', 'bad2'])
    expect(refused[0]!.reason).toMatch(/VIOLATED_CONSTRAINT/)
    expect(stored.sort()).toEqual(['a', 'c', 'd'])
    expect(tokens[0]).toBe('T')
    expect(new Set(tokens).size).toBe(tokens.length) // a retry of the block repeats the same tokens, never two parts with one
  })

  it('rethrows an outage (anything but a content refusal): the block is retried whole', async () => {
    await expect(
      insertSettingAsideRefused(['a', 'b'], 'T', async () => {
        throw refusal('UNKNOWN_TABLE')
      }),
    ).rejects.toThrow(/UNKNOWN_TABLE/)
    expect(isRefusedForContent(new Error('socket hang up'))).toBe(false)
    expect(isRefusedForContent(refusal('CANNOT_PARSE_DATETIME'))).toBe(true)
  })
})
