import fastify from 'fastify'

// The reference point for bench/redirect.ts: a fastify app that answers a fixed 302 and does
// nothing else (no click ID, no Redis, no Kafka).
const app = fastify({ logger: false })
app.get('/c/:campaignId', (_request, reply) => reply.code(302).header('location', 'https://shop.example/landing?click_id=fixed').send())
// …and the same for a postback: a fixed 200 with a JSON body, nothing validated or stored.
app.post('/postback', async () => ({ status: 'accepted', postback_id: 'fixed' }))
app.get('/healthz', async () => ({ status: 'ok' }))
// The same accept backlog as ingest (INGEST_LISTEN_BACKLOG): 800 connections opened at once
// must not lose SYNs to Node's default of 511 in one server and not in another.
await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1', backlog: 4096 })
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)))
