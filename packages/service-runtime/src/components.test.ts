import { describe, expect, it } from 'vitest'
import { componentLifecycle, type Component } from './components.ts'

function recorder() {
  const events: string[] = []
  const component = (id: string, options: { failStart?: boolean; failStop?: boolean; startGate?: Promise<void> } = {}): Component => ({
    id,
    async start() {
      await options.startGate
      if (options.failStart) throw new Error(`${id} cannot start`)
      events.push(`start ${id}`)
    },
    async stop() {
      events.push(`stop ${id}`)
      if (options.failStop) throw new Error(`${id} cannot stop`)
    },
    health: () => ({ ok: true, detail: 'ok' }),
  })
  return { events, component }
}

describe('component lifecycle', () => {
  it('starts in order and stops in reverse, once', async () => {
    const { events, component } = recorder()
    const lifecycle = componentLifecycle([component('kafka'), component('redis'), component('http')])
    await lifecycle.start()
    await Promise.all([lifecycle.stop(), lifecycle.stop()])
    expect(events).toEqual(['start kafka', 'start redis', 'start http', 'stop http', 'stop redis', 'stop kafka'])
  })

  it('a failed start stops what was started, in reverse, and throws', async () => {
    const { events, component } = recorder()
    const lifecycle = componentLifecycle([component('kafka'), component('redis'), component('http', { failStart: true })])
    await expect(lifecycle.start()).rejects.toThrow('http cannot start')
    expect(events).toEqual(['start kafka', 'start redis', 'stop redis', 'stop kafka'])
  })

  it('every stop runs even when one fails; the failure is reported', async () => {
    const { events, component } = recorder()
    const lifecycle = componentLifecycle([component('kafka'), component('redis', { failStop: true }), component('http')])
    await lifecycle.start()
    await expect(lifecycle.stop()).rejects.toThrow('redis cannot stop')
    expect(events.slice(3)).toEqual(['stop http', 'stop redis', 'stop kafka'])
  })

  it('a stop during start leaves nothing running', async () => {
    const { events, component } = recorder()
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const lifecycle = componentLifecycle([component('kafka'), component('redis', { startGate: gate }), component('http')])
    const starting = lifecycle.start()
    await new Promise((resolve) => setImmediate(resolve))
    const stopping = lifecycle.stop()
    open()
    await expect(starting).rejects.toThrow('stopped while starting')
    await stopping
    expect(events).toEqual(['start kafka', 'stop kafka', 'start redis', 'stop redis'])
  })
})
