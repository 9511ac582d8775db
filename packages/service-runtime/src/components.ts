/** What every worker, consumer and client of a service exposes (PostHog's PluginServerService). */
export interface Component {
  readonly id: string
  health(): { ok: boolean; detail: string } | Promise<{ ok: boolean; detail: string }>
}

export interface Readiness {
  ok: boolean
  components: Record<string, { ok: boolean; detail: string }>
}

/** A service is ready when every component it depends on is. */
export async function readiness(components: readonly Component[]): Promise<Readiness> {
  const entries = await Promise.all(
    components.map(async (c) => {
      try {
        return [c.id, await c.health()] as const
      } catch (err) {
        return [c.id, { ok: false, detail: err instanceof Error ? err.message : String(err) }] as const
      }
    }),
  )
  return { ok: entries.every(([, h]) => h.ok), components: Object.fromEntries(entries) }
}
