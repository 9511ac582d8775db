import fastify, { type FastifyServerOptions } from 'fastify'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { lazyRequestLoggers } from './request-logger.ts'

/** The JSON lines a fastify app logs while answering `GET /?n=…`, without their timestamps. */
async function linesOf(options: Pick<FastifyServerOptions, 'childLoggerFactory'>, level: string): Promise<Array<Record<string, unknown>>> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const line = JSON.parse(chunk.toString()) as Record<string, unknown>
      for (const varying of ['time', 'pid', 'hostname', 'responseTime']) delete line[varying]
      lines.push(line)
      done()
    },
  })
  let n = 0
  const app = fastify({ logger: { level, stream }, genReqId: () => `req-${++n}`, ...options })
  app.get('/', async (request) => {
    request.log.debug('not written at info')
    request.log.info({ step: 1 }, 'handling')
    request.log.warn('careful')
    request.log.child({ part: 'inner' }).error({ code: 'x' }, 'inner failure')
    return { ok: true }
  })
  for (let i = 0; i < 2; i++) expect((await app.inject({ method: 'GET', url: '/' })).statusCode).toBe(200)
  await app.close()
  return lines
}

describe('lazyRequestLoggers', () => {
  it('writes exactly the lines of fastify’s per-request child logger, request ID included', async () => {
    const lazy = await linesOf({ childLoggerFactory: lazyRequestLoggers }, 'info')
    expect(lazy).toEqual(await linesOf({}, 'info'))
    // fastify's own request lines go through it too.
    expect(lazy.filter((line) => line['msg'] === 'request completed').map((line) => line['reqId'])).toEqual(['req-1', 'req-2'])
    expect(lazy.filter((line) => line['msg'] !== 'incoming request' && line['msg'] !== 'request completed')).toEqual(
      [1, 2].flatMap((i) => [
        { level: 30, reqId: `req-${i}`, step: 1, msg: 'handling' },
        { level: 40, reqId: `req-${i}`, msg: 'careful' },
        { level: 50, reqId: `req-${i}`, part: 'inner', code: 'x', msg: 'inner failure' },
      ]),
    )
  })

  it('writes nothing below the level, and the lines above it as the child would', async () => {
    const lazy = await linesOf({ childLoggerFactory: lazyRequestLoggers }, 'error')
    expect(lazy).toEqual(await linesOf({}, 'error'))
    expect(lazy.map((line) => line['msg'])).toEqual(['inner failure', 'inner failure'])
  })
})
