import type { FastifyInstance, HTTPMethods } from 'fastify'
import { sendError } from './errors.ts'

/** The Allow header of a 405 route (its config), or undefined for every other route. */
export function allowedMethodsOf(config: unknown): string | undefined {
  const allow = (config as { allowedMethods?: unknown } | undefined)?.allowedMethods
  return typeof allow === 'string' ? allow : undefined
}

/**
 * A known path with a method it does not take answers `405` with `Allow` (RFC 9110), not a
 * 404 that says the path does not exist: what the OpenAPI document promises and what clients
 * and schemathesis expect (TRACE, DELETE, OPTIONS… on any path). Call `collect` before the
 * routes are registered and `register` after.
 */
export function methodNotAllowedRoutes(app: FastifyInstance): { register(): void } {
  const methodsByUrl = new Map<string, Set<string>>()
  app.addHook('onRoute', (route) => {
    if (allowedMethodsOf(route.config) !== undefined) return
    const methods = methodsByUrl.get(route.url) ?? new Set<string>()
    const own = [route.method].flat()
    for (const method of own) methods.add(method)
    if (own.includes('GET') && route.exposeHeadRoute !== false) methods.add('HEAD')
    methodsByUrl.set(route.url, methods)
  })
  return {
    register() {
      for (const [url, methods] of methodsByUrl) {
        const others = app.supportedMethods.filter((method) => !methods.has(method)) as HTTPMethods[]
        if (others.length === 0) continue
        const allow = [...methods].sort().join(', ')
        app.route({
          method: others,
          url,
          config: { allowedMethods: allow },
          schema: { hide: true },
          exposeHeadRoute: false,
          handler: async (request, reply) => {
            reply.header('allow', allow)
            return sendError(reply, 405, 'method_not_allowed', `${request.method} is not allowed here; allowed: ${allow}`)
          },
        })
      }
    },
  }
}
