import { Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createIngestMetrics, LabelledHistogram } from './metrics.ts'

describe('ingest metrics counted in plain numbers', () => {
  it('deferred counts reach the counter at every scrape, per label set, and keep adding up', async () => {
    const registry = new Registry()
    const metrics = createIngestMetrics(registry)
    const found = metrics.requestCounts.child({ route: '/c/:campaignId', method: 'GET', status: '302' })
    const missing = metrics.requestCounts.child({ route: '/c/:campaignId', method: 'GET', status: '404' })
    for (let i = 0; i < 3; i++) found()
    missing()
    let text = await registry.metrics()
    expect(text).toContain('clickjoin_ingest_http_requests_total{route="/c/:campaignId",method="GET",status="302"} 3')
    expect(text).toContain('clickjoin_ingest_http_requests_total{route="/c/:campaignId",method="GET",status="404"} 1')
    found()
    text = await registry.metrics()
    expect(text).toContain('clickjoin_ingest_http_requests_total{route="/c/:campaignId",method="GET",status="302"} 4')
    expect(text).toContain('clickjoin_ingest_http_requests_total{route="/c/:campaignId",method="GET",status="404"} 1')
  })

  it('the histogram exposes what prom-client would for the same observations', async () => {
    const buckets = [0.001, 0.01, 0.1, 1]
    const observations = [0.0005, 0.001, 0.003, 0.05, 0.05, 0.7, 3]
    const ours = new Registry()
    const observe = new LabelledHistogram('t_seconds', 'help', 'route', buckets, ours).child('/c')
    const theirs = new Registry()
    const reference = new Histogram({ name: 't_seconds', help: 'help', labelNames: ['route'], buckets, registers: [theirs] })
    for (const v of observations) {
      observe(v)
      reference.observe({ route: '/c' }, v)
    }
    const lines = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('t_seconds'))
        // label order aside
        .map((l) => l.replace(/\{([^}]*)\}/, (_m, inner: string) => `{${inner.split(',').sort().join(',')}}`))
        .sort()
    expect(lines(await ours.metrics())).toEqual(lines(await theirs.metrics()))
    expect(lines(await ours.metrics())).toContain('t_seconds_bucket{le="0.01",route="/c"} 3')
  })
})
