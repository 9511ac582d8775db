import type { ColdTier } from './cold-tier.ts'
import type { Log } from './consumer.ts'
import type { AttributorMetrics } from './metrics.ts'

interface Sample {
  clickId: string
  createdAtMs: number
  recordedAtMs: number
}

export interface ColdLagProbe {
  /** Offers a click just recorded in Redis; at most one is followed per second. */
  sample(sample: Sample): void
  start(): void
  stop(): void
  health(): { ok: boolean; detail: string }
}

const MAX_FOLLOWED = 1_000

/**
 * How far ClickHouse is behind the attributor, measured where it matters: the age of the
 * oldest click recorded in Redis that click_lookup does not show yet. A click leaves Redis a
 * hot period after it was recorded, so this lag must stay below the hot period or a click
 * could be in neither tier (docs/delivery.md). Above half of it the probe alarms: an error
 * log every minute, the gauge `clickjoin_attributor_cold_tier_lag_seconds`, and the health detail.
 */
export function createColdLagProbe(
  deps: { cold: ColdTier; metrics: AttributorMetrics; log: Log },
  settings: { hotSeconds: number; intervalMs: number },
): ColdLagProbe {
  const followed: Sample[] = []
  let timer: NodeJS.Timeout | undefined
  let lagSeconds = 0
  let lastAlarmMs = 0
  let lastError: string | undefined

  async function probe(): Promise<void> {
    if (followed.length > 0) {
      const found = await deps.cold.has(followed)
      for (let i = followed.length - 1; i >= 0; i--) if (found.has(followed[i]!.clickId)) followed.splice(i, 1)
    }
    lagSeconds = followed.length === 0 ? 0 : (Date.now() - followed[0]!.recordedAtMs) / 1000
    deps.metrics.coldTierLag.set(lagSeconds)
    if (lagSeconds > settings.hotSeconds / 2 && Date.now() - lastAlarmMs > 60_000) {
      lastAlarmMs = Date.now()
      deps.log.error(
        { lagSeconds, hotSeconds: settings.hotSeconds },
        'ClickHouse is behind by more than half the hot period: clicks could leave Redis before the sink stored them',
      )
    }
  }

  return {
    sample(sample) {
      const last = followed.at(-1)
      if (followed.length >= MAX_FOLLOWED || (last && sample.recordedAtMs - last.recordedAtMs < 1_000)) return
      followed.push(sample)
    },
    start() {
      timer = setInterval(() => {
        probe().then(
          () => (lastError = undefined),
          (err: unknown) => (lastError = err instanceof Error ? err.message : String(err)),
        )
      }, settings.intervalMs)
      timer.unref()
    },
    stop() {
      if (timer) clearInterval(timer)
    },
    health() {
      if (lastError) return { ok: true, detail: `cannot reach ClickHouse (cold lookups wait): ${lastError}` }
      const alarm = lagSeconds > settings.hotSeconds / 2 ? ' ALARM: over half the hot period' : ''
      return { ok: true, detail: `cold tier ${lagSeconds.toFixed(0)} s behind${alarm}` }
    },
  }
}
