import { createServer, createConnection } from 'node:net'

/**
 * Ports this process handed out or reserved. A port freePort returns is free only until its
 * user binds it, and the kernel may offer the same port again meanwhile: the test stack starts
 * a Redis Cluster while the Kafka broker's JVM is still starting, and a cluster node once bound
 * the controller port Kafka had been given (CI, 2026-11-26: "Socket server failed to bind to
 * 127.0.0.1:32821"). So a port is handed out once per process.
 */
const handedOut = new Set<number>()

/**
 * Marks a port as taken by this process without asking the kernel (a Redis Cluster node's bus
 * port, port + 10000); false if this process had already handed it out.
 */
export function reservePort(port: number): boolean {
  if (handedOut.has(port)) return false
  handedOut.add(port)
  return true
}

/** A TCP port that was free a moment ago on 127.0.0.1, never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await anyFreePort()
    if (handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
  throw new Error('no free port that this process has not handed out already')
}

async function anyFreePort(): Promise<number> {
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
