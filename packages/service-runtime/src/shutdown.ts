export interface ShutdownStep {
  name: string
  run(): Promise<void>
}

/** The part of a pino/fastify logger that services and their parts log through. */
export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/**
 * Runs the shutdown steps once, in order (stop taking requests, stop consumers, flush the
 * producer, close pools), against one deadline; a second signal does not start another run.
 * Returns a function to trigger it from elsewhere (a fatal error, a test).
 */
export function onShutdownSignals(
  steps: () => readonly ShutdownStep[],
  log: Logger,
  options: { deadlineMs?: number; exit?: (code: number) => void } = {},
): (reason: string) => Promise<void> {
  const deadlineMs = options.deadlineMs ?? 30_000
  const exit = options.exit ?? ((code: number) => process.exit(code))
  let running: Promise<void> | undefined

  const shutdown = (reason: string): Promise<void> => {
    running ??= (async () => {
      log.info({ reason, deadlineMs }, 'shutting down')
      const timer = setTimeout(() => {
        log.error({ deadlineMs }, 'shutdown deadline passed; exiting with work unfinished')
        exit(1)
      }, deadlineMs)
      timer.unref()
      let failed = false
      for (const step of steps()) {
        const started = Date.now()
        try {
          await step.run()
          log.info({ step: step.name, ms: Date.now() - started }, 'shutdown step done')
        } catch (err) {
          failed = true
          log.error({ step: step.name, err }, 'shutdown step failed')
        }
      }
      clearTimeout(timer)
      exit(failed ? 1 : 0)
    })()
    return running
  }
  process.once('SIGINT', () => void shutdown('SIGINT'))
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  return shutdown
}
