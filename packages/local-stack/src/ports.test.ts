import { describe, expect, it } from 'vitest'
import { freePort, reservePort } from './ports.ts'

describe('freePort', () => {
  it('never hands out the same port twice in a process, although the kernel offers freed ports again', async () => {
    const ports: number[] = []
    for (let i = 0; i < 300; i++) ports.push(await freePort())
    expect(new Set(ports).size).toBe(ports.length)
  })

  it('treats a reserved port as handed out, and a handed-out port cannot be reserved', async () => {
    const port = await freePort()
    expect(reservePort(port)).toBe(false)
    const bus = port + 10_000 <= 65_535 ? port + 10_000 : port - 10_000
    expect(reservePort(bus)).toBe(true)
    expect(reservePort(bus)).toBe(false)
  })
})
