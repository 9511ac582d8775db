import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { ensureKafkaJars, ensureKafkaTools } from './kafka.ts'
import { cacheDir } from './paths.ts'
import { ensureRedisServer } from './redis.ts'

/**
 * Python tools the test suite runs (from PyPI, pinned): schemathesis against the ingest's
 * OpenAPI document, clickhouse-connect against the sink's SQL endpoint. In a venv under
 * .cache/python; a stamp with the pinned list makes a second run a no-op.
 */
const PYTHON_TOOLS = ['schemathesis==4.32.5', 'clickhouse-connect==1.12.0']

async function ensurePythonTools(log: (line: string) => void): Promise<void> {
  const venv = path.join(cacheDir, 'python')
  const stamp = path.join(venv, '.clickjoin-tools')
  const wanted = PYTHON_TOOLS.join('\n')
  if (existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted) return
  const run = promisify(execFile)
  log(`installing ${PYTHON_TOOLS.join(', ')} into ${venv}`)
  if (!existsSync(path.join(venv, 'bin', 'pip'))) {
    await rm(venv, { recursive: true, force: true })
    try {
      await run('python3', ['-m', 'venv', venv])
    } catch (err) {
      // Debian ships venv (ensurepip) separately: install it when we may (root, apt), as for redis-server.
      if (process.getuid?.() !== 0) throw new Error(`python3 -m venv failed; install python3-venv (${err instanceof Error ? err.message : String(err)})`)
      log('installing python3-venv (apt-get)')
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
      await run('apt-get', ['update', '-qq'], { env, maxBuffer: 64 * 1024 * 1024 })
      await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'python3-venv'], { env, maxBuffer: 64 * 1024 * 1024 })
      await rm(venv, { recursive: true, force: true })
      await run('python3', ['-m', 'venv', venv])
    }
  }
  await run(path.join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', ...PYTHON_TOOLS], { maxBuffer: 16 * 1024 * 1024 })
  await writeFile(stamp, wanted)
}

// `scripts/run.sh` calls this before start and test: what the local stack needs, fetched once.
// With KAFKA_BROKERS / REDIS_URL set, that service is external and nothing is installed for it.
const log = (line: string) => console.error(`[clickjoin] ${line}`)
if (!process.env['REDIS_URL']) await ensureRedisServer(log)
if (!process.env['KAFKA_BROKERS']) await ensureKafkaJars(log)
// The CLI tools are a convenience (reading a topic by hand): their absence never blocks a start.
await ensureKafkaTools(log).catch((err: unknown) => log(`Kafka CLI tools not installed: ${err instanceof Error ? err.message : String(err)}`))
// Only the tests need the Python tools: `npm start` does not wait for them.
if (process.env['npm_lifecycle_event'] !== 'start') await ensurePythonTools(log)
