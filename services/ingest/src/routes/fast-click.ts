import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { performance } from 'node:perf_hooks'
import proxyAddr from '@fastify/proxy-addr'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import fastQuerystring from 'fast-querystring'
import type { ConfigStore } from '@clickjoin/campaigns'
import { setCookieHeader } from '../domain/cookie.ts'
import type { IngestMetrics } from '../plugins/metrics.ts'
import { TrackingParams, TrackingQuery, TrackingQueryWithCampaign } from '../schemas/clicks.ts'
import { cachedBotCheck, CLICK_COOKIE, passthroughParams, type ClickRecorder, type PreparedClick } from './click-recorder.ts'

/**
 * The tracking link's common case — a visitor's `GET /c/<campaign>?…` (or `/c?campaign=…`) for an
 * active campaign, with valid parameters, answered 302 — served straight from node's HTTP server,
 * before fastify's request handling (routing, Request and Reply objects, hooks, schema
 * validation, the reply's send path). That handling cost about as much CPU per click as the
 * click's own work (docs/benchmarks.md, "The tracking link outside fastify").
 *
 * Everything else goes to fastify untouched, which answers it as before: another method or path,
 * a parameter the schema refuses, JSON answers, unknown or paused campaigns, a refused click
 * (unsafe destination, too long), a body, while the server closes or is under pressure, and
 * whenever fastify would write request log lines (LOG_LEVEL info or below). A click whose
 * recording fails (Kafka and the journal both unavailable) is handed to fastify with its error,
 * which answers it exactly as a click of its own that failed (fastify-path errors: 503 with
 * Retry-After, logged). The click itself, the event, the duplicate window and the metrics are the
 * same code as fastify's route (click-recorder.ts); the answer has the same status and headers
 * (test/fast-click.int.test.ts compares the two).
 */
export interface FastClickPathOptions {
  configStore: ConfigStore
  clicks: ClickRecorder
  metrics: IngestMetrics
  /** INGEST_TRUST_PROXY: the visitor's IP and protocol from X-Forwarded-For / -Proto, as fastify's `trustProxy: true`. */
  trustProxy: boolean
  /** Whether fastify would answer this request itself now (closing, under pressure, logging every request). */
  bypassed: () => boolean
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

const kFailure = Symbol('clickjoin.fastClickFailure')
type WithFailure = IncomingMessage & { [kFailure]?: unknown }

/** The error that made the fast path hand this request to fastify, if any (taken once). */
export function takeFastPathFailure(req: IncomingMessage): unknown {
  const failure = (req as WithFailure)[kFailure]
  if (failure !== undefined) (req as WithFailure)[kFailure] = undefined
  return failure
}

// The routes' own schemas: a query they accept is one fastify's validation accepts (TypeBox's
// maxLength counts UTF-16 units, ajv's code points: never more lenient).
const campaignIdChecker = TypeCompiler.Compile(TrackingParams)
const queryChecker = TypeCompiler.Compile(TrackingQuery)
const queryWithCampaignChecker = TypeCompiler.Compile(TrackingQueryWithCampaign)
const trustAll = () => true

export interface FastClickPath {
  /** Serves the request, or passes it to `fallback` (fastify's handler) as it came. */
  handle(req: IncomingMessage, res: ServerResponse, fallback: RequestHandler): void
  /** Clicks answered here since start (tests check the path is taken). */
  readonly served: number
}

export function createFastClickPath(options: FastClickPathOptions): FastClickPath {
  const { configStore, clicks, metrics, trustProxy, bypassed } = options
  const isBotAgent = cachedBotCheck()
  // The same series fastify's onResponse hook counts and times (plugins/metrics.ts).
  const countByPath = metrics.requestCounts.child({ route: '/c/:campaignId', method: 'GET', status: '302' })
  const countByQuery = metrics.requestCounts.child({ route: '/c', method: 'GET', status: '302' })
  const timeByPath = metrics.requestDuration.child('/c/:campaignId')
  const timeByQuery = metrics.requestDuration.child('/c')
  let served = 0

  function handle(req: IncomingMessage, res: ServerResponse, fallback: RequestHandler): void {
    const url = req.url ?? ''
    // `/c/` or `/c?`: the path ends at the first `?` or `#`, as fastify's router splits it.
    if (req.method !== 'GET' || url.charCodeAt(0) !== 47 || url.charCodeAt(1) !== 99) return fallback(req, res)
    const byPath = url.charCodeAt(2) === 47
    let pathEnd = url.indexOf('?')
    const hash = url.indexOf('#')
    if (hash !== -1 && (pathEnd === -1 || hash < pathEnd)) pathEnd = hash
    if (!byPath && pathEnd !== 2 && url.length !== 2) return fallback(req, res)
    const path = pathEnd === -1 ? url : url.slice(0, pathEnd)
    const headers = req.headers
    const requestId = headers['x-request-id']
    if (
      bypassed() ||
      // A body, or fastify's own request ID (an empty header): fastify's.
      headers['content-length'] !== undefined ||
      headers['transfer-encoding'] !== undefined ||
      (requestId !== undefined && (typeof requestId !== 'string' || requestId === '')) ||
      headers.accept?.includes('application/json') === true
    ) {
      return fallback(req, res)
    }
    const campaignIdInPath = byPath ? path.slice(3) : ''
    // Percent-encoded or otherwise unusual campaign IDs (fastify decodes them): fastify's.
    if (byPath && !campaignIdChecker.Check({ campaignId: campaignIdInPath })) return fallback(req, res)
    const query = pathEnd === -1 || pathEnd === url.length - 1 ? {} : fastQuerystring.parse(url.slice(pathEnd + 1))
    if (byPath ? !queryChecker.Check(query) : !queryWithCampaignChecker.Check(query)) return fallback(req, res)
    const params = query as TrackingQueryWithCampaign
    if (params.format !== undefined) return fallback(req, res)
    const campaign = configStore.campaign(byPath ? campaignIdInPath : params.campaign)
    if (campaign === undefined || campaign.status === 'paused') return fallback(req, res)
    const socket = req.socket
    let ip: string | undefined
    let secure: boolean
    if (trustProxy) {
      const addresses = proxyAddr.all(req, trustAll)
      ip = addresses[addresses.length - 1]
      const proto = headers['x-forwarded-proto']
      secure = typeof proto === 'string' && proto !== '' ? lastEntry(proto) === 'https' : (socket as TLSSocket).encrypted === true
    } else {
      ip = socket.remoteAddress
      secure = (socket as TLSSocket).encrypted === true
    }
    if (ip === undefined) return fallback(req, res)
    const userAgent = headers['user-agent'] ?? ''
    const startedAt = performance.now()
    let prepared: PreparedClick
    try {
      prepared = clicks.prepare({
        campaign,
        params,
        clickTs: Date.now(),
        ip,
        userAgent,
        referer: headers.referer ?? '',
        isBot: isBotAgent(userAgent),
        passthrough: campaign.passthrough ? passthroughParams(url) : [],
        browser: true,
      })
    } catch {
      // Refused (unsafe or too long a destination): nothing was recorded; fastify answers why.
      return fallback(req, res)
    }
    clicks.commit(prepared, true).then(
      () => {
        const cookie = setCookieHeader(CLICK_COOKIE, prepared.event.click_id, campaign.window_seconds, secure)
        // fastify's headers, in its order: the request ID (ingest's onRequest hook), then the route's.
        const head =
          requestId === undefined
            ? ['set-cookie', cookie, 'cache-control', 'no-store', 'location', prepared.location, 'content-length', '0']
            : ['x-request-id', requestId, 'set-cookie', cookie, 'cache-control', 'no-store', 'location', prepared.location, 'content-length', '0']
        res.writeHead(302, head).end()
        served++
        if (byPath) {
          countByPath()
          timeByPath((performance.now() - startedAt) / 1000)
        } else {
          countByQuery()
          timeByQuery((performance.now() - startedAt) / 1000)
        }
      },
      (err: unknown) => {
        ;(req as WithFailure)[kFailure] = err
        fallback(req, res)
      },
    )
  }

  return {
    handle,
    get served() {
      return served
    },
  }
}

/** fastify's reading of a repeated X-Forwarded-Proto: the last entry. */
function lastEntry(value: string): string {
  const at = value.lastIndexOf(',')
  return at === -1 ? value.trim() : value.slice(at + 1).trim()
}
