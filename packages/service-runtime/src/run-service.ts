import { ConfigError } from '@clickjoin/config'
import type { Logger } from './logger.ts'
import { processAlive } from './process.ts'

/** EX_CONFIG of sysexits.h: the environment cannot start the service. */
export const EXIT_CONFIG = 78

/** A composed service, as `createXService(config, deps)` returns it. */
export interface RunnableService {
  readonly log: Logger
  /** Starts the components in order, the HTTP listener last. */
  start(): Promise<void>
  /** Stops them in reverse, once. */
  stop(): Promise<void>
}

export interface ServiceDefinition<C> {
  /** Shown in front of a configuration error. */
  name: string
  /** Validates the environment; throws ConfigError naming every bad variable. */
  loadConfig(env: NodeJS.ProcessEnv): C
  create(config: C): RunnableService | Promise<RunnableService>
  /** The whole shutdown must finish within this; default 30 s. */
  shutdownDeadlineMs?(config: C): number
}

export interface RunServiceOptions {
  env?: NodeJS.ProcessEnv
  exit?: (code: number) => void
}

/**
 * The process entry of every service (its server.ts is one call of this): configuration once
 * — a bad variable exits 78 naming it —, compose, start, and on SIGINT/SIGTERM one shutdown
 * against one deadline. A start that fails stops what was started and exits 1. When
 * `CLICKJOIN_PARENT_PID` is set (npm start sets it), the service also shuts down when that
 * process is gone, so a supervisor killed with -9 leaves no service behind.
 */
export async function runService<C>(definition: ServiceDefinition<C>, options: RunServiceOptions = {}): Promise<void> {
  const env = options.env ?? process.env
  const exit = options.exit ?? ((code: number) => process.exit(code))
  let config: C
  try {
    config = definition.loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${definition.name}: ${err.message}\n`)
      exit(EXIT_CONFIG)
      return
    }
    throw err
  }
  const deadlineMs = definition.shutdownDeadlineMs?.(config) ?? 30_000
  const service = await definition.create(config)
  const log = service.log

  let shuttingDown: Promise<void> | undefined
  const shutdown = (reason: string, code = 0): Promise<void> =>
    (shuttingDown ??= (async () => {
      log.info({ reason, deadlineMs }, 'shutting down')
      const timer = setTimeout(() => {
        log.error({ deadlineMs }, 'shutdown deadline passed; exiting with work unfinished')
        exit(1)
      }, deadlineMs)
      timer.unref()
      let failed = false
      try {
        await service.stop()
      } catch (err) {
        failed = true
        log.error({ err }, 'shutdown failed')
      }
      clearTimeout(timer)
      log.info({ reason }, 'stopped')
      exit(failed ? 1 : code)
    })())
  // `on`, not `once`: a second signal (a supervisor and a watcher both asking) must not
  // kill the process half-way through its one shutdown.
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  watchParent(env['CLICKJOIN_PARENT_PID'], () => void shutdown('parent process exited'))

  try {
    await service.start()
  } catch (err) {
    log.error({ err }, 'start failed')
    await shutdown('start failed', 1)
  }
}

/** Polls the supervisor's PID; Linux has a parent-death signal, but Node does not expose it. */
function watchParent(pidText: string | undefined, onGone: () => void): void {
  const pid = Number(pidText)
  if (!Number.isInteger(pid) || pid <= 1) return
  const timer = setInterval(() => {
    if (processAlive(pid)) return
    clearInterval(timer)
    onGone()
  }, 1_000)
  timer.unref()
}
