import { fileURLToPath } from 'node:url'
import path from 'node:path'

/** The repository root (this file is packages/local-stack/src/paths.ts). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

/** Downloaded artifacts (Kafka jars); never committed, safe to delete. */
export const cacheDir = process.env['CLICKJOIN_CACHE_DIR'] ?? path.join(repoRoot, '.cache')

/** Data of `npm start` (Kafka log dirs, Redis AOF, embedded ClickHouse). */
export const defaultDataDir = path.join(repoRoot, '.data')
