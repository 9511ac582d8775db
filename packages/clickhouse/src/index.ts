import { mkdirSync } from 'node:fs'
import { createClient, type ClickHouseClient } from '@clickhouse/client'
import { createChdbConnection } from 'chdb/connection'

export type { ClickHouseClient } from '@clickhouse/client'

type ChdbCompatibleConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>

export type ClickHouseTarget =
  /** A ClickHouse server (docker-compose, production). */
  | { kind: 'server'; url: string; username?: string; password?: string }
  /**
   * The real ClickHouse engine in this process through chDB, persisted under `dataDir`.
   * Only one process can open a data directory at a time.
   */
  | { kind: 'embedded'; dataDir: string }

/** `CLICKHOUSE_URL` set → that server; otherwise embedded chDB under the data dir. */
export function clickHouseTarget(url: string | undefined, embeddedDataDir: string): ClickHouseTarget {
  if (!url) return { kind: 'embedded', dataDir: embeddedDataDir }
  const parsed = new URL(url)
  const target: ClickHouseTarget = { kind: 'server', url: `${parsed.protocol}//${parsed.host}${parsed.pathname}` }
  if (parsed.username) target.username = decodeURIComponent(parsed.username)
  if (parsed.password) target.password = decodeURIComponent(parsed.password)
  return target
}

/** The same @clickhouse/client for both targets; only the connection differs. */
export function createClickHouse(target: ClickHouseTarget): ClickHouseClient {
  if (target.kind === 'server') {
    return createClient({
      url: target.url,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
    })
  }
  mkdirSync(target.dataDir, { recursive: true })
  // chdb types its connection against @clickhouse/client-common, which the client now bundles
  // under its own (structurally equal) declarations: hence the cast.
  const connection = createChdbConnection({ path: target.dataDir }) as unknown as ChdbCompatibleConnection
  return createClient({ connection })
}

/**
 * Inserts JSONEachRow rows, optionally deduplicated by a token (a replayed batch with the same
 * token is dropped by ClickHouse). The token is passed on every call, empty when unused:
 * through chdb/connection, settings given to one call stay set on the embedded session for
 * later calls, so a token left over from a previous insert would silently drop this one.
 */
export async function insertRows(
  client: ClickHouseClient,
  params: { table: string; rows: readonly object[]; deduplicationToken?: string },
): Promise<void> {
  await client.insert({
    table: params.table,
    values: params.rows as object[],
    format: 'JSONEachRow',
    clickhouse_settings: {
      insert_deduplication_token: params.deduplicationToken ?? '',
      date_time_input_format: 'best_effort',
    },
  })
}
