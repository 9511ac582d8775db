import { Command, InvalidArgumentError, Option } from 'commander'
import { adminApi, CliError, runSql, type Endpoints } from './admin-client.ts'
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
  .description('create or replace a campaign')
  .requiredOption('--destination <url>', 'landing URL template, e.g. https://shop.example/?cid={click_id}')
  .addOption(new Option('--status <status>', 'active or paused').choices(['active', 'paused']).default('active'))
  .option('--fallback-url <url>', 'where paused campaigns redirect')
  .option('--click-id-param <name>', 'query parameter for the click ID when the template has no {click_id}')
  .option('--window <seconds>', 'attribution window in seconds', seconds)
  .option('--currency <code>', 'ISO 4217 currency')
  .option('--cpa <amount>', 'pay this amount per approved conversion')
  .option('--revshare <percent>', 'pay this percentage of revenue')
  .option('--passthrough', 'pass unknown click parameters through to the destination')
  .option('--pixel', 'accept conversions from the browser pixel')
  .action(async (id: string, o: Record<string, string | number | boolean | undefined>) => {
    if (o['cpa'] !== undefined && o['revshare'] !== undefined) throw new CliError('choose --cpa or --revshare, not both')
    const body: Record<string, unknown> = { destination: o['destination'], status: o['status'] }
    if (o['fallbackUrl'] !== undefined) body['fallback_url'] = o['fallbackUrl']
    if (o['clickIdParam'] !== undefined) body['click_id_param'] = o['clickIdParam']
    if (o['window'] !== undefined) body['window_seconds'] = o['window']
    if (o['currency'] !== undefined) body['currency'] = o['currency']
    if (o['cpa'] !== undefined) body['payout'] = { type: 'cpa', amount: o['cpa'] }
    if (o['revshare'] !== undefined) body['payout'] = { type: 'revshare', percent: o['revshare'] }
    if (o['passthrough']) body['passthrough'] = true
    if (o['pixel']) body['pixel_enabled'] = true
    await adminApi.putCampaign(endpoints(), id, body)
    console.log(`campaign ${id} saved`)
  })

const partners = program.command('partners').description('show and set partners')

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

try {
  await program.parseAsync()
} catch (err) {
  if (err instanceof CliError) {
    console.error(`clickjoin: ${err.message}`)
    process.exit(1)
  }
  throw err
}
