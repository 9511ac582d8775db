import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'

export interface ManagedProcess {
  readonly name: string
  readonly pid: number
  /** Where its stdout and stderr go. */
  readonly logFile: string
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<string>
  isRunning(): boolean
  /** SIGTERM, then SIGKILL after the grace period. Resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>
  /** SIGKILL at once, as a crash would. */
  kill(): Promise<void>
}

// Children that must not outlive us even if our caller forgets to stop them or crashes.
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export function startProcess(
  name: string,
  command: string,
  args: string[],
  options: {
    logFile: string
    cwd?: string
    env?: NodeJS.ProcessEnv
    /** Also copy each output line to our stdout, prefixed (`[ingest] ...`). */
    echoPrefix?: string
  },
): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: 'a' })
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: a Ctrl-C in the terminal reaches only us, and we stop the children
    // in order (services before Kafka and Redis) instead of all at once.
    detached: true,
  })
  child.stdout.pipe(log)
  child.stderr.pipe(log)
  if (options.echoPrefix !== undefined) {
    const prefix = options.echoPrefix
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix}${line}\n`))
    }
  }
  live.add(child)
  let running = true
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false
      live.delete(child)
      resolve(signal ?? String(code))
    })
    child.once('error', (err) => {
      running = false
      live.delete(child)
      resolve(`spawn error: ${err.message}`)
    })
  })
  // Once its output pipes are drained too ('close' comes after 'exit'): ending the log at 'exit'
  // loses the last lines, or fails a write still on its way.
  child.once('close', () => log.end())

  async function signalAndWait(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    if (!running) return
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(timer)
  }

  return {
    name,
    pid: child.pid ?? -1,
    logFile: options.logFile,
    exited,
    isRunning: () => running,
    stop: (graceMs = 15_000) => signalAndWait('SIGTERM', graceMs),
    kill: () => signalAndWait('SIGKILL', 0),
  }
}

/** Polls `probe` until it returns true; fails early when the process dies. */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  describe: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exitedWith: string | undefined
  proc.exited.then((code) => (exitedWith = code)).catch(() => undefined)
  while (Date.now() < deadline) {
    if (exitedWith !== undefined) {
      // The log is gone with a test's temporary directory: its last lines go into the error.
      throw new Error(`${proc.name} exited (${exitedWith}) before ${describe}; last lines of ${proc.logFile}:\n${await logTail(proc.logFile)}`)
    }
    if (await probe().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${proc.name}: ${describe} not reached within ${timeoutMs} ms`)
}

async function logTail(file: string, lines = 20): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')
  } catch (err) {
    return `(unreadable: ${err instanceof Error ? err.message : String(err)})`
  }
}
