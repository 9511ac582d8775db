import { Command, InvalidArgumentError, Option } from 'commander'
import { adminApi, AdminApiError, CliError, runSql, type Endpoints } from './admin-client.ts'
import { registerDeadLetterCommands } from './dead-letter-commands.ts'
import { registerPublisherCommands } from './publisher-commands.ts'

const program = new Command('clickjoin')
  .description('clickjoin for operators and analysts: campaigns, partners, tracking links, SQL')
  .addOption(new Option('--ingest <url>', 'ingest base URL').env('INGEST_URL').default('http://127.0.0.1:8080'))
  .addOption(new Option('--admin-token <token>', 'admin API token').env('ADMIN_TOKEN').default('dev-admin-token'))
  .addOption(
    new Option('--clickhouse <url>', 'ClickHouse HTTP URL (a server or the embedded endpoint)')
      .env('CLICKHOUSE_URL')
      .default('http://127.0.0.1:8123'),
  )
  .showHelpAfterError()

function endpoints(): Endpoints {
  const o = program.opts<{ ingest: string; adminToken: string; clickhouse: string }>()
  return { ingestUrl: o.ingest, adminToken: o.adminToken, clickhouseUrl: o.clickhouse }
}

const seconds = (value: string): number => {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive number of seconds')
  return n
}

const campaigns = program.command('campaigns').description('list, show and set campaigns')

campaigns
  .command('list')
  .description('all campaigns, one line each')
  .action(async () => {
    const rows = await adminApi.listCampaigns(endpoints())
    if (rows.length === 0) return console.log('no campaigns')
    console.table(
      rows.map((c) => ({
        id: c['id'],
        status: c['status'],
        window_s: c['window_seconds'],
        payout: JSON.stringify(c['payout'] ?? null),
        destination: c['destination'],
      })),
    )
  })

campaigns
  .command('show <id>')
  .description('one campaign as JSON')
  .action(async (id: string) => console.log(JSON.stringify(await adminApi.getCampaign(endpoints(), id), null, 2)))

campaigns
  .command('set <id>')
  .description('create a campaign, or change only the given fields of an existing one')
  .option('--destination <url>', 'landing URL template, e.g. https://shop.example/?cid={click_id} (required for a new campaign)')
  .addOption(new Option('--status <status>', 'active or paused (a new campaign: active)').choices(['active', 'paused']))
  .option('--fallback-url <url>', 'where paused campaigns redirect')
  .option('--click-id-param <name>', 'query parameter for the click ID when the template has no {click_id}')
  .option('--window <seconds>', 'attribution window in seconds', seconds)
  .option('--currency <code>', 'ISO 4217 currency')
  .option('--cpa <amount>', 'pay this amount per approved conversion')
  .option('--revshare <percent>', 'pay this percentage of revenue')
  .option('--passthrough', 'pass unknown click parameters through to the destination')
  .option('--no-passthrough', 'do not pass unknown click parameters through')
  .option('--pixel', 'accept conversions from the browser pixel')
  .option('--no-pixel', 'refuse conversions from the browser pixel')
  .action(async (id: string, o: Record<string, string | number | boolean | undefined>) => {
    if (o['cpa'] !== undefined && o['revshare'] !== undefined) throw new CliError('choose --cpa or --revshare, not both')
    const fields: Record<string, unknown> = {}
    if (o['destination'] !== undefined) fields['destination'] = o['destination']
    if (o['status'] !== undefined) fields['status'] = o['status']
    if (o['fallbackUrl'] !== undefined) fields['fallback_url'] = o['fallbackUrl']
    if (o['clickIdParam'] !== undefined) fields['click_id_param'] = o['clickIdParam']
    if (o['window'] !== undefined) fields['window_seconds'] = o['window']
    if (o['currency'] !== undefined) fields['currency'] = o['currency']
    if (o['cpa'] !== undefined) fields['payout'] = { type: 'cpa', amount: o['cpa'] }
    if (o['revshare'] !== undefined) fields['payout'] = { type: 'revshare', percent: o['revshare'] }
    // commander sets a negatable flag's default (true) even when neither form was given: only explicit ones count.
    if (process.argv.some((a) => a === '--passthrough' || a === '--no-passthrough')) fields['passthrough'] = o['passthrough']
    if (process.argv.some((a) => a === '--pixel' || a === '--no-pixel')) fields['pixel_enabled'] = o['pixel']
    try {
      await adminApi.patchCampaign(endpoints(), id, fields)
      console.log(`campaign ${id} updated: ${Object.keys(fields).join(', ') || 'nothing to change'}`)
    } catch (err) {
      if (!(err instanceof AdminApiError && err.status === 404)) throw err
      if (fields['destination'] === undefined) throw new CliError(`campaign ${id} does not exist: --destination is required to create it`)
      await adminApi.putCampaign(endpoints(), id, { status: 'active', ...fields })
      console.log(`campaign ${id} created`)
    }
  })

const partners = program.command('partners').description('list, show and set partners')

partners
  .command('list')
  .description('all partners, one line each (never their secrets)')
  .action(async () => {
    const rows = await adminApi.listPartners(endpoints())
    if (rows.length === 0) return console.log('no partners')
    console.table(rows.map((p) => ({ id: p['id'], ip_allowlist: (p['ip_allowlist'] as string[]).join(' ') || '(any)' })))
  })

partners
  .command('show <id>')
  .description('one partner (never its secret)')
  .action(async (id: string) => console.log(JSON.stringify(await adminApi.getPartner(endpoints(), id), null, 2)))

partners
  .command('set <id>')
  .description('create or replace a partner')
  .requiredOption('--secret <secret>', 'token / HMAC secret the partner authenticates with')
  .option('--allow-ip <ip...>', 'IP addresses or CIDR ranges allowed to post')
  .action(async (id: string, o: { secret: string; allowIp?: string[] }) => {
    await adminApi.putPartner(endpoints(), id, { secret: o.secret, ...(o.allowIp ? { ip_allowlist: o.allowIp } : {}) })
    console.log(`partner ${id} saved`)
  })

const link = program
  .command('link <campaign>')
  .description('the personalized tracking URL of a campaign')
for (const p of ['pub', 'sub1', 'sub2', 'sub3', 'sub4', 'sub5', 'src', 'cr']) link.option(`--${p} <value>`)
link.action(async (campaign: string, o: Record<string, string>) => {
  console.log(await adminApi.trackingLink(endpoints(), campaign, o))
})

program
  .command('sql <query...>')
  .description('run SQL against ClickHouse and print the result')
  .option('--format <format>', 'ClickHouse output format', 'PrettyCompactMonoBlock')
  .action(async (words: string[], o: { format: string }) => {
    process.stdout.write(await runSql(endpoints(), words.join(' '), o.format))
  })

registerPublisherCommands(program, endpoints)
registerDeadLetterCommands(program, endpoints)

try {
  await program.parseAsync()
} catch (err) {
  if (err instanceof CliError) {
    console.error(`clickjoin: ${err.message}`)
    process.exit(1)
  }
  throw err
}
