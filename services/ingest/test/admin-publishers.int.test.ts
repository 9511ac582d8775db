import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { repoRoot } from '@clickjoin/local-stack'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, adminHeaders, startTestIngest } from './harness.ts'

type Service = Awaited<ReturnType<typeof startTestIngest>>
let svc: Service
let redis: Redis
beforeAll(async () => {
  svc = await startTestIngest()
  redis = new Redis(svc.config.redisUrl)
})
afterAll(async () => {
  await redis?.quit()
  await svc?.stop()
})

const secret = `whsec_${randomBytes(32).toString('base64')}`

describe('admin API: publishers (SPEC §4)', () => {
  it('stores the rules with their defaults and never shows the secret', async () => {
    const put = await svc.app.inject({
      method: 'PUT',
      url: '/admin/publishers/aff-1',
      headers: adminHeaders,
      payload: {
        secret,
        postbacks: [
          { url: 'https://tracker.example/pb?cid={sub1}&p={payout}' },
          { url: 'https://tracker.example/hook', method: 'POST', events: ['purchase'], statuses: ['approved', 'rejected'], campaigns: ['summer'] },
        ],
      },
    })
    expect(put.statusCode).toBe(200)
    const expected = {
      id: 'aff-1',
      has_secret: true,
      postbacks: [
        { url: 'https://tracker.example/pb?cid={sub1}&p={payout}', method: 'GET', events: null, statuses: ['approved'], campaigns: null },
        { url: 'https://tracker.example/hook', method: 'POST', events: ['purchase'], statuses: ['approved', 'rejected'], campaigns: ['summer'] },
      ],
    }
    expect(put.json()).toMatchObject(expected)
    const get = await svc.app.inject({ url: '/admin/publishers/aff-1', headers: adminHeaders })
    expect(get.statusCode).toBe(200)
    expect(get.json()).toMatchObject(expected)
    for (const body of [put.body, get.body]) expect(body).not.toContain('whsec_')
    // Where the dispatcher reads it: the secret is there.
    const stored = JSON.parse((await redis.hget(`${svc.config.redisKeyPrefix}publishers`, 'aff-1'))!) as { secret: string }
    expect(stored.secret).toBe(secret)
  })

  it('refuses bad input with a 400 naming the field, and stores nothing', async () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ postbacks: [{ url: '/relative' }] }, /url/],
      // The document's pattern (UrlTemplate) refuses these before the route looks: its description says what is wanted.
      [{ postbacks: [{ url: 'ftp://x.example/' }] }, /postbacks\.0\.url: must be an absolute http\(s\) URL/],
      [{ postbacks: [{ url: 'https://x.example/a\u0001b' }] }, /postbacks\.0\.url: must be .*printable ASCII/],
      [{ postbacks: [{ url: 'https://ok.example/' }, { url: 'https://{sub1}.evil.example/' }] }, /postbacks\.1\.url: must be an absolute http\(s\) URL: a host/],
      [{ postbacks: [{ url: 'https://user:pw@x.example/' }] }, /postbacks\.0\.url: must be an absolute http\(s\) URL/],
      [{ secret: 'not-a-secret', postbacks: [] }, /secret/],
      [{ secret: 'whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!!!', postbacks: [] }, /secret/],
      [{ postbacks: [{ url: 'https://x.example/', statuses: ['paid'] }] }, /statuses/],
      [{ postbacks: [{ url: 'https://x.example/', events: ['Bad Event'] }] }, /events/],
      [{ postbacks: [{ url: 'https://x.example/', method: 'DELETE' }] }, /method/],
      [{ postbacks: [{ url: 'https://x.example/', extra: 1 }] }, /extra|additional/],
      [{}, /postbacks/],
    ]
    for (const [payload, message] of bad) {
      const res = await svc.app.inject({ method: 'PUT', url: '/admin/publishers/aff-bad', headers: adminHeaders, payload: payload as object })
      expect(res.statusCode, JSON.stringify(payload)).toBe(400)
      expect(res.json().error).toBeTypeOf('string')
      expect(res.json().message, JSON.stringify(payload)).toMatch(message)
    }
    expect((await svc.app.inject({ url: '/admin/publishers/aff-bad', headers: adminHeaders })).statusCode).toBe(404)
    expect(await redis.hexists(`${svc.config.redisKeyPrefix}publishers`, 'aff-bad')).toBe(0)
  })

  it('needs the bearer token', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: ADMIN_TOKEN }]) {
      const get = await svc.app.inject({ url: '/admin/publishers/aff-1', headers })
      expect(get.statusCode).toBe(401)
      const put = await svc.app.inject({ method: 'PUT', url: '/admin/publishers/aff-1', headers, payload: { postbacks: [] } })
      expect(put.statusCode).toBe(401)
    }
  })

  it('is what `clickjoin publishers set|show` use', async () => {
    const ingestUrl = svc.url() // the service is listening already (start())
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/cli/src/main.ts', '--ingest', ingestUrl, '--admin-token', ADMIN_TOKEN, ...args], {
        cwd: repoRoot,
      }).then((r) => r.stdout)
    expect(
      await cli('publishers', 'set', 'aff-cli', '--url', 'https://t.example/a?c={sub1}', '--url', 'https://t.example/b', '--statuses', 'approved,rejected', '--secret', secret),
    ).toContain('publisher aff-cli saved')
    const shown = JSON.parse(await cli('publishers', 'show', 'aff-cli')) as { has_secret: boolean; postbacks: Array<{ url: string; statuses: string[] }> }
    expect(shown.has_secret).toBe(true)
    expect(shown.postbacks.map((p) => [p.url, p.statuses])).toEqual([
      ['https://t.example/a?c={sub1}', ['approved', 'rejected']],
      ['https://t.example/b', ['approved', 'rejected']],
    ])
    await expect(cli('publishers', 'set', 'aff-cli', '--url', 'ftp://nope')).rejects.toThrow(/postbacks\.0\.url: must be an absolute http\(s\) URL/)
  })
})
