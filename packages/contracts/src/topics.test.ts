import { describe, expect, it } from 'vitest'
import { clickV1Contract } from './click.ts'
import { postbackV1Contract } from './postback.ts'
import { topicContracts, topicNames } from './topics.ts'

describe('topicNames', () => {
  it('uses the spec names without a prefix', () => {
    expect(topicNames()).toEqual({
      clicks: 'clicks',
      conversions: 'conversions',
      outcomes: 'outcomes',
      deadLetter: 'dead_letter',
      deliveries: 'postback_deliveries',
    })
  })

  it('puts the prefix in front of every topic', () => {
    expect(topicNames('test_3f2a.')).toEqual({
      clicks: 'test_3f2a.clicks',
      conversions: 'test_3f2a.conversions',
      outcomes: 'test_3f2a.outcomes',
      deadLetter: 'test_3f2a.dead_letter',
      deliveries: 'test_3f2a.postback_deliveries',
    })
  })

  it('refuses a prefix Kafka would refuse', () => {
    for (const prefix of ['a b', 'a/b', 'ü', 'x'.repeat(231)]) {
      expect(() => topicNames(prefix)).toThrow(/topic prefix/)
    }
    expect(topicNames('x'.repeat(230)).deliveries).toHaveLength(249)
  })

  it('says what each topic carries', () => {
    expect(topicContracts.clicks).toBe(clickV1Contract)
    expect(topicContracts.conversions).toBe(postbackV1Contract)
    expect(topicContracts.outcomes.name).toBe('OutcomeV1')
    expect(topicContracts.deadLetter.version).toBe(1)
  })
})
