import { ensureKafkaJars } from './kafka.ts'
import { ensureRedisServer } from './redis.ts'

// `scripts/run.sh` calls this before start and test: what the local stack needs, fetched once.
// With KAFKA_BROKERS / REDIS_URL set, that service is external and nothing is installed for it.
const log = (line: string) => console.error(`[clickjoin] ${line}`)
if (!process.env['REDIS_URL']) await ensureRedisServer(log)
if (!process.env['KAFKA_BROKERS']) await ensureKafkaJars(log)
