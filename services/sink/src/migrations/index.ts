import type { ClickHouseClient } from '@clickjoin/clickhouse'
import { eventTables } from './0001-event-tables.ts'
import { campaignReport } from './0002-campaign-report.ts'
import { clickLookup } from './0003-click-lookup.ts'
import { reportAtVolume } from './0004-report-at-volume.ts'
import { postbackDeliveries } from './0005-postback-deliveries.ts'
import { deadLetters } from './0006-dead-letters.ts'
import { applyMigrations, type Migration, type MigrationLog } from './migration.ts'
import { applyRetention, type RetentionDays } from './retention.ts'

export { DEDUPLICATION_WINDOW } from './0001-event-tables.ts'
export { CLICKS_REPORT_PROJECTION } from './0004-report-at-volume.ts'
export type { Migration } from './migration.ts'
export type { RetentionDays } from './retention.ts'

/** Every schema version, in order. Append; never edit one that has shipped. */
export const migrations: readonly Migration[] = [eventTables, campaignReport, clickLookup, reportAtVolume, postbackDeliveries, deadLetters]

/** Brings `database` to the latest schema and the configured retention. */
export async function migrateSchema(
  client: ClickHouseClient,
  options: { database: string; retentionDays: RetentionDays; log: MigrationLog },
): Promise<number[]> {
  const ran = await applyMigrations(client, options.database, migrations, options.log)
  await applyRetention(client, options.database, options.retentionDays)
  return ran
}
