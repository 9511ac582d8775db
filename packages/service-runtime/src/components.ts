import type { Logger } from './logger.ts'

export interface ComponentHealth {
  ok: boolean
  detail: string
  /** Working, but not as it should (e.g. events waiting in a local journal for Kafka). */
  degraded?: boolean
}

/**
 * What every part of a service exposes — a consumer, a producer, a client pool, the HTTP
 * listener (PostHog's PluginServerService). `start` and `stop` are optional for parts whose
 * life another part owns; every part answers `health` for `/readyz`.
 */
export interface Component {
  readonly id: string
  start?(): Promise<void>
  stop?(): Promise<void>
  health(): ComponentHealth | Promise<ComponentHealth>
}

export interface Readiness {
  ok: boolean
  /** Ready, with at least one component degraded. */
  degraded: boolean
  components: Record<string, ComponentHealth>
}

/** A service is ready when every component it depends on is. */
export async function readiness(components: readonly Component[]): Promise<Readiness> {
  const entries = await Promise.all(
    components.map(async (c) => {
      try {
        return [c.id, await c.health()] as const
      } catch (err) {
        return [c.id, { ok: false, detail: err instanceof Error ? err.message : String(err) } as ComponentHealth] as const
      }
    }),
  )
  return {
    ok: entries.every(([, h]) => h.ok),
    degraded: entries.some(([, h]) => h.degraded === true),
    components: Object.fromEntries(entries),
  }
}

export interface ComponentLifecycle {
  /** Starts every component in order; if one fails, stops those already started (in reverse) and throws. */
  start(): Promise<void>
  /**
   * Stops the started components in reverse order, once (later calls share the first). Every
   * stop runs even when an earlier one failed; the failures are thrown together at the end.
   */
  stop(): Promise<void>
}

/** Components started in order and stopped in reverse: the one lifecycle of every service. */
export function componentLifecycle(components: readonly Component[], log?: Logger): ComponentLifecycle {
  const started: Component[] = []
  let stopping: Promise<void> | undefined

  async function stopStarted(): Promise<void> {
    const failures: unknown[] = []
    for (const component of started.splice(0).reverse()) {
      const began = Date.now()
      try {
        await component.stop?.()
        log?.info({ component: component.id, ms: Date.now() - began }, 'stopped')
      } catch (err) {
        failures.push(err)
        log?.error({ component: component.id, err }, 'stop failed')
      }
    }
    if (failures.length === 1) throw failures[0]
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} components failed to stop`)
  }

  return {
    async start() {
      for (const component of components) {
        if (stopping) throw new Error(`stopped while starting (before ${component.id})`)
        try {
          await component.start?.()
        } catch (err) {
          // The caller logs the error itself (once); here only which part it was.
          log?.warn({ component: component.id }, 'component failed to start; stopping what was started')
          await stopStarted().catch(() => undefined)
          throw err
        }
        started.push(component)
        if (stopping) {
          // A stop arrived while this one was starting: the stop has already run over the
          // others, so this one is stopped here rather than left running.
          await stopStarted().catch(() => undefined)
          throw new Error(`stopped while starting (during ${component.id})`)
        }
      }
    },
    stop() {
      stopping ??= stopStarted()
      return stopping
    },
  }
}
