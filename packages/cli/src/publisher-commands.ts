import { readFile } from 'node:fs/promises'
import { InvalidArgumentError, Option, type Command } from 'commander'
import { CliError, runSql, type Endpoints } from './admin-client.ts'

/**
 * `clickjoin publishers …` (the admin API of SPEC §4), `clickjoin deliveries` (what the
 * dispatcher did, from `postback_deliveries`) and `clickjoin redeliver` (make deliveries due
 * again through the dispatcher's `POST /admin/redeliver`).
 */
export function registerPublisherCommands(program: Command, endpoints: () => Endpoints): void {
  program
    .addOption(new Option('--dispatcher <url>', 'dispatcher base URL').env('DISPATCHER_URL').default('http://127.0.0.1:8083'))
    .addOption(new Option('--database <name>', 'ClickHouse database').env('CLICKHOUSE_DATABASE').default('clickjoin'))

  const publishers = program.command('publishers').description('show and set publishers and their postback rules')

  publishers
    .command('show <id>')
    .description('one publisher and its postback rules (never its secret)')
    .action(async (id: string) => console.log(JSON.stringify(await adminCall(endpoints(), 'GET', `/admin/publishers/${encodeURIComponent(id)}`), null, 2)))

  publishers
    .command('set <id>')
    .description('create or replace a publisher: one postback rule per --url, sharing the filters given; or --json')
    .option('--url <template...>', 'postback URL template, e.g. https://tracker.example/pb?cid={sub1}&payout={payout}')
    .addOption(new Option('--method <method>', 'GET or POST (JSON body)').choices(['GET', 'POST']))
    .option('--events <list>', 'comma-separated events (default: all)', list)
    .option('--statuses <list>', 'comma-separated statuses: approved, pending, rejected (default: approved)', list)
    .option('--campaigns <list>', 'comma-separated campaign IDs (default: all)', list)
    .option('--secret <whsec>', 'Standard Webhooks signing secret, whsec_<base64>')
    .option('--json <body-or-@file>', 'the whole PUT body as JSON, or @path to a file with it')
    .action(async (id: string, o: { url?: string[]; method?: string; events?: string[]; statuses?: string[]; campaigns?: string[]; secret?: string; json?: string }) => {
      let body: object
      if (o.json !== undefined) {
        const text = o.json.startsWith('@') ? await readFile(o.json.slice(1), 'utf8') : o.json
        try {
          body = JSON.parse(text) as object
        } catch (err) {
          throw new CliError(`--json: not valid JSON: ${(err as Error).message}`)
        }
      } else {
        if (!o.url?.length) throw new CliError('give at least one --url, or --json')
        const filters = {
          ...(o.method ? { method: o.method } : {}),
          ...(o.events ? { events: o.events } : {}),
          ...(o.statuses ? { statuses: o.statuses } : {}),
          ...(o.campaigns ? { campaigns: o.campaigns } : {}),
        }
        body = { ...(o.secret ? { secret: o.secret } : {}), postbacks: o.url.map((url) => ({ url, ...filters })) }
      }
      await adminCall(endpoints(), 'PUT', `/admin/publishers/${encodeURIComponent(id)}`, body)
      console.log(`publisher ${id} saved`)
    })

  const filters = (command: Command) =>
    command
      .option('--publisher <id>', 'only this publisher')
      .option('--conversion <id>', 'only this conversion')
      .addOption(new Option('--state <state>', 'only deliveries whose latest attempt is in this state').choices(['delivered', 'retrying', 'failed', 'refused']))
      .option('--limit <n>', 'at most this many', positive, 100)

  filters(program.command('deliveries'))
    .description('publisher postbacks: one line per delivery with its latest attempt (or every attempt with --attempts)')
    .option('--attempts', 'every attempt instead of one line per delivery')
    .action(async (o: DeliveryFilter & { attempts?: boolean }) => {
      const { sql, params } = o.attempts ? attemptsQuery(database(program), o) : deliveriesQuery(database(program), o)
      process.stdout.write(await runSql(endpoints(), sql, 'PrettyCompactMonoBlock', params))
    })

  filters(program.command('redeliver [job-id...]'))
    .description('make deliveries due again with a new retry period: the job IDs given, or those matching the filters (default --state failed)')
    .action(async (jobIds: string[], o: DeliveryFilter) => {
      let ids = jobIds
      if (ids.length === 0) {
        if (!o.publisher && !o.conversion && !o.state) throw new CliError('give job IDs, or at least one of --publisher, --conversion, --state')
        const { sql, params } = deliveriesQuery(database(program), { ...o, state: o.state ?? 'failed' }, 'job_id')
        ids = (await runSql(endpoints(), sql, 'TabSeparated', params)).split('\n').filter((line) => line !== '')
      }
      if (ids.length === 0) return console.log('no matching deliveries')
      const dispatcher = program.opts<{ dispatcher: string }>().dispatcher
      const answer = (await adminCall({ ...endpoints(), ingestUrl: dispatcher }, 'POST', '/admin/redeliver', { job_ids: ids })) as {
        redelivered: string[]
        not_found: string[]
      }
      console.log(`${answer.redelivered.length} deliveries due again`)
      if (answer.not_found.length > 0) console.log(`not found in the dispatcher (finished too long ago): ${answer.not_found.join(', ')}`)
    })
}

interface DeliveryFilter {
  publisher?: string
  conversion?: string
  state?: string
  limit: number
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
}

function positive(value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer')
  return n
}

function database(program: Command): string {
  const name = program.opts<{ database: string }>().database
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new CliError(`--database: not a database name: ${name}`)
  return name
}

function where(o: DeliveryFilter): { clause: string; params: Record<string, string> } {
  const conditions: string[] = []
  const params: Record<string, string> = {}
  if (o.publisher) {
    conditions.push('publisher_id = {publisher:String}')
    params['publisher'] = o.publisher
  }
  if (o.conversion) {
    conditions.push('conversion_id = {conversion:String}')
    params['conversion'] = o.conversion
  }
  return { clause: conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '', params }
}

/** One row per delivery (job): its latest attempt. Attempt numbers keep growing across redelivers. */
export function deliveriesQuery(db: string, o: DeliveryFilter, columns?: 'job_id'): { sql: string; params: Record<string, string> } {
  const { clause, params } = where(o)
  const having = o.state ? 'HAVING latest_state = {state:String}' : ''
  if (o.state) params['state'] = o.state
  params['limit'] = String(o.limit)
  const select =
    columns === 'job_id'
      ? 'job_id'
      : `last_sent_at, publisher, webhook, latest_state, attempts, last_status, last_duration_ms, last_error, called_url, job_id`
  const sql = `SELECT ${select} FROM (
      SELECT job_id, any(webhook_id) AS webhook, any(publisher_id) AS publisher, argMax(state, attempt) AS latest_state,
             max(attempt) AS attempts, argMax(status_code, attempt) AS last_status, argMax(duration_ms, attempt) AS last_duration_ms,
             argMax(error, attempt) AS last_error, max(sent_at) AS last_sent_at, any(url) AS called_url
      FROM ${db}.postback_deliveries ${clause}
      GROUP BY job_id ${having}
    ) ORDER BY last_sent_at DESC LIMIT {limit:UInt32}`
  return { sql, params }
}

export function attemptsQuery(db: string, o: DeliveryFilter): { sql: string; params: Record<string, string> } {
  const { clause, params } = where(o)
  const stateCondition = o.state ? `${clause ? ' AND' : 'WHERE'} state = {state:String}` : ''
  if (o.state) params['state'] = o.state
  params['limit'] = String(o.limit)
  const sql = `SELECT sent_at, publisher_id, webhook_id, attempt, state, status_code, duration_ms, error, next_attempt_at, url
    FROM ${db}.postback_deliveries FINAL ${clause}${stateCondition}
    ORDER BY sent_at DESC LIMIT {limit:UInt32}`
  return { sql, params }
}

async function adminCall(endpoints: Endpoints, method: 'GET' | 'PUT' | 'POST', path: string, body?: object): Promise<unknown> {
  let res: Response
  try {
    res = await fetch(new URL(path, endpoints.ingestUrl), {
      method,
      headers: { authorization: `Bearer ${endpoints.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
  } catch (err) {
    throw new CliError(`cannot reach ${endpoints.ingestUrl}: ${(err as Error).message}`)
  }
  const text = await res.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // keep the text
  }
  if (!res.ok) throw new CliError(`${method} ${path}: ${res.status} ${(parsed as { message?: string }).message ?? text}`)
  return parsed
}
