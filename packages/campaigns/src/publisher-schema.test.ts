import { describe, expect, it } from 'vitest'
import { postbackUrlProblem, publisherFromInput } from './publisher-schema.ts'

describe('postbackUrlProblem', () => {
  it('accepts absolute http(s) URL templates with macros after the host', () => {
    for (const url of ['https://t.example/pb?cid={sub1}&p={payout}', 'http://10.0.0.1:8080/{pub}/x', 'https://t.example#{click_id}']) {
      expect(postbackUrlProblem(url)).toBeUndefined()
    }
  })
  it('names what is wrong otherwise', () => {
    expect(postbackUrlProblem('ftp://t.example/')).toMatch(/absolute http/)
    expect(postbackUrlProblem('/relative?x=1')).toMatch(/absolute http/)
    expect(postbackUrlProblem('https:///nohost')).toMatch(/host/)
    expect(postbackUrlProblem('https://{sub1}.example/')).toMatch(/macros/)
    expect(postbackUrlProblem('https://t.example/a\nb')).toMatch(/control/)
    expect(postbackUrlProblem('https://t.example/a b')).toMatch(/control/)
    expect(postbackUrlProblem('https://user:pw@t.example/')).toMatch(/credentials/)
    expect(postbackUrlProblem('https://exa mple/')).toMatch(/control/)
    expect(postbackUrlProblem('https://[::1/')).toMatch(/valid URL/)
  })
})

describe('publisherFromInput', () => {
  it('applies the defaults of SPEC §4', () => {
    expect(publisherFromInput('p', { postbacks: [{ url: 'https://x.example/' }] }, 5)).toEqual({
      id: 'p',
      secret: null,
      postbacks: [{ url: 'https://x.example/', method: 'GET', events: null, statuses: ['approved'], campaigns: null }],
      updated_at: 5,
    })
  })
})
