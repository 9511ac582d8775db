import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { webhookSecretKey } from '@clickjoin/campaigns'
import { webhookHeaders } from './signature.ts'

describe('webhookHeaders', () => {
  const secret = `whsec_${randomBytes(32).toString('base64')}`
  const now = Math.floor(Date.now() / 1000)

  it('verifies with the standardwebhooks library (an independent implementation)', () => {
    const body = JSON.stringify({ conversion_id: 'cv_1', payout: '5' })
    const headers = webhookHeaders({ webhookId: 'cv_1:2', timestampSeconds: now, body, key: webhookSecretKey(secret) })
    expect(headers['webhook-id']).toBe('cv_1:2')
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/)
    expect(new Webhook(secret).verify(body, headers)).toEqual({ conversion_id: 'cv_1', payout: '5' })
  })

  it('signs an empty body for GET, and a wrong secret does not verify', () => {
    const headers = webhookHeaders({ webhookId: 'cv_1:1', timestampSeconds: now, body: '', key: webhookSecretKey(secret) })
    const expected = webhookHeaders({ webhookId: 'cv_1:1', timestampSeconds: now, body: '', key: webhookSecretKey(secret) })
    expect(headers).toEqual(expected)
    const other = `whsec_${randomBytes(32).toString('base64')}`
    expect(() => new Webhook(other).verify('x', webhookHeaders({ webhookId: 'a', timestampSeconds: now, body: 'x', key: webhookSecretKey(secret) }))).toThrow()
  })

  it('sends no signature without a secret', () => {
    expect(webhookHeaders({ webhookId: 'a:1', timestampSeconds: now, body: '', key: undefined })).toEqual({
      'webhook-id': 'a:1',
      'webhook-timestamp': String(now),
    })
  })

  it('refuses malformed secrets', () => {
    expect(webhookSecretKey('whsec_!!!!')).toBeUndefined()
    expect(webhookSecretKey('secret')).toBeUndefined()
    expect(webhookSecretKey(`whsec_${randomBytes(8).toString('base64')}`)).toBeUndefined()
  })
})
