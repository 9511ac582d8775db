import type { OutcomeV1 } from '@clickjoin/contracts'

/** An attributed, approved conversion version as the attributor publishes it (unit tests). */
export function outcomeFixture(overrides: Partial<OutcomeV1> = {}): OutcomeV1 {
  return {
    v: 1,
    conversion_id: 'cv_1',
    version: 1,
    postback_id: 'pb_1',
    click_id: 'clk_AbC-123',
    partner_id: 'adv',
    event: 'purchase',
    txn_id: 'order 42/β',
    status: 'approved',
    outcome: 'attributed',
    reason: '',
    campaign_id: 'summer',
    publisher_id: 'pub7',
    sub1: 'their click&id=1',
    sub2: '',
    sub3: 's3',
    sub4: '',
    sub5: 'ü',
    click_ts: 1_700_000_000_000,
    conversion_ts: 1_700_000_123_456,
    ctit_ms: 123_456,
    revenue: '49.9',
    payout: '5',
    currency: 'EUR',
    is_fast: false,
    updated_at: 1_700_000_124_000,
    ...overrides,
  }
}
