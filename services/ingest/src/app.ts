import fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import fastifySwagger from '@fastify/swagger'
import underPressure from '@fastify/under-pressure'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { Registry } from 'prom-client'
import type { ConfigStore, PublisherStore } from '@clickjoin/campaigns'
import type { ClickIdKeyring } from '@clickjoin/click-id'
import { healthRoutes, type Component } from '@clickjoin/service-runtime'
import type { ClickIdempotency } from './domain/click-idempotency.ts'
import type { DuplicateClickDetector } from './domain/duplicate-clicks.ts'
import type { EventPublisher } from './domain/events.ts'
import type { SignatureReplayGuard } from './domain/signature-replay.ts'
import { errorResponses, sendUnavailable } from './plugins/errors.ts'
import { methodNotAllowedRoutes } from './plugins/method-not-allowed.ts'
import { requestMetrics, type IngestMetrics } from './plugins/metrics.ts'
import { rawBodyParsers } from './plugins/raw-body.ts'
import { lazyRequestLoggers } from './plugins/request-logger.ts'
import { adminRoutes } from './routes/admin.ts'
import { createClickRecorder, type ClickRecorder } from './routes/click-recorder.ts'
import { clickRoutes } from './routes/clicks.ts'
import { createFastClickPath, type FastClickPath, type RequestHandler } from './routes/fast-click.ts'
import { pixelRoutes } from './routes/pixel.ts'
import { postbackRoutes } from './routes/postbacks.ts'
import { Type } from '@sinclair/typebox'
import { ErrorBody } from './schemas/common.ts'

export interface IngestSettings {
  adminToken: string
  /** Base of the tracking links the admin API hands out, without a trailing slash. */
  publicUrl: string
  retryAfterSeconds: number
  /** 0: no event-loop-delay load shedding. */
  maxEventLoopDelayMs: number
  unknownCampaignUrl: string | undefined
}

/** Everything the HTTP edge needs, built by the composition root (server.ts or a test). */
export interface IngestDeps {
  configStore: ConfigStore
  /** Publishers' postback rules (SPEC §4), read and written in Redis for the dispatcher. */
  publishers: PublisherStore
  events: EventPublisher
  duplicates: DuplicateClickDetector
  /** POST /clicks items' idempotency keys (SPEC §2). */
  clickIdempotency: ClickIdempotency
  /** Signed postbacks seen within their window (SPEC §3: a replay is a duplicate). */
  signatureReplays: SignatureReplayGuard
  keyring: ClickIdKeyring
  metrics: IngestMetrics
  registry: Registry
  components: () => readonly Component[]
  settings: IngestSettings
}

/** The ingest edge as a fastify plugin: every route, hook and error format. */
export const ingestApp: FastifyPluginAsync<IngestDeps & { clicks: ClickRecorder }> = fp(
  async (app: FastifyInstance, deps: IngestDeps & { clicks: ClickRecorder }) => {
    const { settings } = deps
    app.addSchema(ErrorBody)
    await app.register(errorResponses, { retryAfterSeconds: settings.retryAfterSeconds })
    await app.register(requestMetrics, { metrics: deps.metrics })
    await app.register(rawBodyParsers)
    if (settings.maxEventLoopDelayMs > 0) {
      await app.register(underPressure, {
        maxEventLoopDelay: settings.maxEventLoopDelayMs,
        pressureHandler: (_request, reply, type) => {
          reply.rejectReason = 'overloaded'
          void sendUnavailable(reply, settings.retryAfterSeconds, `overloaded (${type}); retry later`)
        },
      })
    }
    await app.register(fastifySwagger, {
      openapi: {
        // 3.1: full JSON Schema, so the document keeps rules such as propertyNames (event names).
        openapi: '3.1.0',
        info: { title: 'clickjoin ingest', version: '1.0.0', description: 'Tracking links, S2S clicks, postbacks, pixel, admin API' },
        components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
      },
    })
    // A caller that sends X-Request-Id (a load balancer, a partner) gets it back and finds it in
    // our logs; a visitor's browser, which never reads it, is not sent a generated one (bytes
    // in every 302). A callback hook, not an async one: no promise and microtask per request.
    app.addHook('onRequest', (request, reply, done) => {
      if (request.headers['x-request-id'] !== undefined) reply.header('x-request-id', request.id)
      done()
    })

    // Node refuses a request line or headers over its limit (16 KiB) with 431 before any route runs;
    // every route's document says so.
    app.addHook('onRoute', (route) => {
      const response = (route.schema as { response?: Record<string, unknown> } | undefined)?.response
      if (response && !('431' in response)) response['431'] = Type.Ref('ErrorBody')
    })
    const otherMethods = methodNotAllowedRoutes(app)
    await app.register(clickRoutes, deps)
    await app.register(postbackRoutes, deps)
    await app.register(pixelRoutes, deps)
    await app.register(adminRoutes, { ...deps, prefix: '/admin' })
    await app.register(healthRoutes, { components: deps.components, registry: deps.registry })
    app.get('/docs/openapi.json', { schema: { hide: true } }, async () => app.swagger())
    otherMethods.register()
  },
  { name: 'clickjoin-ingest' },
)

export interface IngestServerOptions {
  logger: FastifyServerOptions['logger']
  bodyLimitBytes: number
  trustProxy: boolean
  /** INGEST_FAST_CLICK_PATH: serve plain tracking-link clicks before fastify (routes/fast-click.ts). */
  fastClickPath: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The tracking link's fast path, when it is on. */
    fastClickPath: FastClickPath | undefined
  }
}

/** `<12 random hex digits>-<counter in base 36>`: unique across replicas and restarts. */
function requestIds(): () => string {
  const prefix = randomBytes(6).toString('hex')
  let n = 0
  return () => `${prefix}-${(++n).toString(36)}`
}

/** A fastify instance with the ingest app registered: what server.ts listens with, and tests inject into. */
export async function buildIngestServer(deps: IngestDeps, options: IngestServerOptions): Promise<FastifyInstance> {
  // Set once the app is ready; until then every request is fastify's.
  const front: { fastPath: FastClickPath | undefined } = { fastPath: undefined }
  const app = fastify({
    // node's HTTP server as fastify makes it, with the tracking link's fast path in front.
    serverFactory: (handler: RequestHandler, opts: Record<string, unknown>) => {
      const server = createServer((req, res) => (front.fastPath ? front.fastPath.handle(req, res, handler) : handler(req, res)))
      server.keepAliveTimeout = opts['keepAliveTimeout'] as number
      server.requestTimeout = opts['requestTimeout'] as number
      server.setTimeout(opts['connectionTimeout'] as number)
      const maxRequestsPerSocket = opts['maxRequestsPerSocket'] as number | undefined
      if (maxRequestsPerSocket !== undefined && maxRequestsPerSocket > 0) server.maxRequestsPerSocket = maxRequestsPerSocket
      return server
    },
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimitBytes,
    trustProxy: options.trustProxy,
    requestIdHeader: 'x-request-id',
    // Unique per replica (a random prefix per process) and cheaper than a UUID per request.
    genReqId: requestIds(),
    // A request's pino child logger is made only when the request writes a line (at warn, a
    // click writes none): fastify's default makes one per request.
    childLoggerFactory: lazyRequestLoggers,
    // A partner typo in an admin body is an error, not a silently dropped field.
    // No type coercion: `"pixel_enabled": null` or `"window_seconds": "5"` is a 400, as the document says.
    // verbose: errors carry their schema, whose description names what is wanted (plugins/errors.ts).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false, verbose: true } },
    routerOptions: { maxParamLength: 200, ignoreTrailingSlash: true },
    return503OnClosing: true,
  })
  const clicks = createClickRecorder(deps)
  await app.register(ingestApp, { ...deps, clicks })
  let closing = false
  app.addHook('preClose', (done) => {
    closing = true
    done()
  })
  // fastify writes two lines per request at info and below: those requests stay fastify's.
  const linesPerRequest = (app.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') ?? false
  const underPressure = deps.settings.maxEventLoopDelayMs > 0 ? () => app.isUnderPressure() : () => false
  const path =
    !options.fastClickPath || linesPerRequest
      ? undefined
      : createFastClickPath({
          configStore: deps.configStore,
          clicks,
          metrics: deps.metrics,
          trustProxy: options.trustProxy,
          bypassed: () => closing || underPressure(),
        })
  app.decorate('fastClickPath', path)
  await app.ready()
  front.fastPath = path
  return app
}
