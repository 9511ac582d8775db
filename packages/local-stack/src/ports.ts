import { createServer, createConnection } from 'node:net'

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new Error('no port assigned')
  return address.port
}

export function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Whether a listener could bind `port` on 127.0.0.1 now. Stricter than isPortOpen: a port that
 * is the local end of an outgoing connection accepts no connection but cannot be bound either.
 */
export async function canBind(port: number, host = '127.0.0.1'): Promise<boolean> {
  const server = createServer()
  const bound = await new Promise<boolean>((resolve) => {
    server.once('listening', () => resolve(true))
    server.once('error', () => resolve(false))
    server.listen(port, host)
  })
  if (bound) await new Promise<void>((resolve) => server.close(() => resolve()))
  return bound
}

/** The port to use: 0 means pick a free one; a taken fixed port is a clear error. */
export async function choosePort(wanted: number, what: string): Promise<number> {
  if (wanted === 0) return freePort()
  if (await isPortOpen(wanted)) {
    throw new Error(`${what}: port ${wanted} is already in use (set another port or point to the running service)`)
  }
  return wanted
}
