import { Counter, Gauge } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { createMetricsRegistry } from './metrics.ts'

describe('metrics registry', () => {
  it('names every metric clickjoin_<service>_…, and no name is both a counter and a gauge', async () => {
    const registry = createMetricsRegistry('sink')
    new Counter({ name: 'clickjoin_sink_rows_written_total', help: 'x', registers: [registry] })
    new Gauge({ name: 'clickjoin_sink_pending_rows', help: 'x', registers: [registry] })
    const metrics = await registry.getMetricsAsJSON()
    expect(metrics.length).toBeGreaterThan(5)
    expect(metrics.filter((m) => !m.name.startsWith('clickjoin_sink_')).map((m) => m.name)).toEqual([])
    const types = new Map<string, Set<string>>()
    for (const m of metrics) types.set(m.name, (types.get(m.name) ?? new Set()).add(String(m.type)))
    expect([...types].filter(([, t]) => t.size > 1)).toEqual([])
  })
})
