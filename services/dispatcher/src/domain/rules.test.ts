import { describe, expect, it } from 'vitest'
import { publisherFromInput } from '@clickjoin/campaigns'
import { outcomeFixture } from './fixtures.ts'
import { matchingRules } from './rules.ts'

const url = 'https://t.example/pb?cid={sub1}'

describe('matchingRules', () => {
  const cases: Array<{ name: string; rules: Parameters<typeof publisherFromInput>[1]['postbacks']; outcome: Parameters<typeof outcomeFixture>[0]; expected: number[] }> = [
    { name: 'defaults: every event and campaign, approved only', rules: [{ url }], outcome: {}, expected: [0] },
    { name: 'defaults do not match pending', rules: [{ url }], outcome: { status: 'pending' }, expected: [] },
    { name: 'defaults do not match a charge-back', rules: [{ url }], outcome: { status: 'rejected' }, expected: [] },
    { name: 'a rule for rejected gets the charge-back', rules: [{ url, statuses: ['approved', 'rejected'] }], outcome: { status: 'rejected' }, expected: [0] },
    { name: 'event filter', rules: [{ url, events: ['lead'] }, { url, events: ['purchase'] }], outcome: {}, expected: [1] },
    { name: 'campaign filter', rules: [{ url, campaigns: ['winter'] }, { url, campaigns: ['summer', 'x'] }], outcome: {}, expected: [1] },
    { name: 'several rules match', rules: [{ url }, { url, method: 'POST' }], outcome: {}, expected: [0, 1] },
    { name: 'a rejected outcome (not attributed) goes to nobody', rules: [{ url }], outcome: { outcome: 'rejected', reason: 'expired' }, expected: [] },
    { name: 'another publisher', rules: [{ url }], outcome: { publisher_id: 'other' }, expected: [] },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const publisher = publisherFromInput('pub7', { postbacks: c.rules })
      expect(matchingRules(publisher, outcomeFixture(c.outcome)).map((m) => m.index)).toEqual(c.expected)
    })
  }
})
