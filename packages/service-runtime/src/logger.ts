/** fastify/pino options for JSON logs with the service name and request IDs on every line. */
export function loggerOptions(service: string, level: string) {
  return {
    level,
    base: { service },
    // Never log secrets that partners or admins send.
    redact: ['req.headers.authorization', 'req.headers["x-clickjoin-token"]', 'req.headers.cookie'],
  }
}

/** The part of a pino/fastify logger that services and their parts log through. */
export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}
