import { insertRows, type ClickHouseClient } from '@clickjoin/clickhouse'

/**
 * One versioned schema change. Every statement must be idempotent (IF NOT EXISTS, OR
 * REPLACE, set-like backfills): a crash between a statement and the record in
 * `schema_migrations` re-runs the migration on the next start, and several sink instances
 * may start at once.
 */
export interface Migration {
  version: number
  name: string
  statements(database: string): string[]
}

export interface MigrationLog {
  info(obj: object, msg?: string): void
}

/**
 * Applies the migrations not yet recorded in `<database>.schema_migrations`, in version
 * order, and records each one after its last statement succeeded.
 */
export async function applyMigrations(
  client: ClickHouseClient,
  database: string,
  migrations: readonly Migration[],
  log: MigrationLog,
): Promise<number[]> {
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` })
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${database}.schema_migrations (
      version UInt32,
      name String,
      applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree ORDER BY version`,
  })
  const rs = await client.query({
    query: `SELECT DISTINCT version FROM ${database}.schema_migrations`,
    format: 'JSONEachRow',
  })
  const applied = new Set((await rs.json<{ version: number }>()).map((row) => Number(row.version)))
  const ran: number[] = []
  for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(migration.version)) continue
    const started = Date.now()
    for (const statement of migration.statements(database)) {
      // The token is reset on every call: chDB keeps settings between calls (see insertRows).
      await client.command({ query: statement, clickhouse_settings: { insert_deduplication_token: '' } })
    }
    await insertRows(client, {
      table: `${database}.schema_migrations`,
      rows: [{ version: migration.version, name: migration.name }],
    })
    ran.push(migration.version)
    log.info({ database, version: migration.version, name: migration.name, ms: Date.now() - started }, 'migration applied')
  }
  return ran
}
