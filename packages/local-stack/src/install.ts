import { ensureKafkaJars, ensureKafkaTools } from './kafka.ts'
import { ensureRedisServer } from './redis.ts'

// `scripts/run.sh` calls this before start and test: what the local stack needs, fetched once.
// With KAFKA_BROKERS / REDIS_URL set, that service is external and nothing is installed for it.
const log = (line: string) => console.error(`[clickjoin] ${line}`)
if (!process.env['REDIS_URL']) await ensureRedisServer(log)
if (!process.env['KAFKA_BROKERS']) await ensureKafkaJars(log)
// The CLI tools are a convenience (reading a topic by hand): their absence never blocks a start.
await ensureKafkaTools(log).catch((err: unknown) => log(`Kafka CLI tools not installed: ${err instanceof Error ? err.message : String(err)}`))
