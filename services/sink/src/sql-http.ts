import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { DataFormat } from '@clickhouse/client'
import type { ClickHouseClient } from '@clickjoin/clickhouse'

/**
 * Read-only SQL over HTTP for the embedded engine, compatible with the query side of the
 * ClickHouse HTTP interface: `query` in the URL and/or the body (concatenated with a
 * newline, as ClickHouse does), `FORMAT` in the query, `default_format` (TabSeparated),
 * `database`, `param_<name>` for `{name:Type}` placeholders, the limits `max_execution_time`,
 * `max_result_rows` and `result_overflow_mode`, `GET /ping`. Errors are ClickHouse's own
 * `Code: N. DB::Exception: … (TYPE)` text with a 4xx/5xx status. Other URL parameters
 * (settings @clickhouse/client sends, query_id) are ignored. With users configured, a request
 * must name one (basic auth, X-ClickHouse-User/Key or user/password parameters, as
 * ClickHouse takes them); a wrong or missing one is a 401 (AUTHENTICATION_FAILED).
 *
 * Read-only is enforced by ClickHouse itself: every session comes from `openSession`, a chDB
 * session of its own (never the writer's), which is put into `readonly = 1` once and for all.
 * ClickHouse then refuses writes, DDL, table functions that reach outside (file, url) and any
 * setting change, including a change back of `readonly`. So the limits cannot be set per
 * query: each distinct set of limits gets its own session, set before it is made read-only
 * (a few are kept, the least recently used closed). Statements that are plainly writes are
 * refused up front with a clearer message, and `INTO OUTFILE`, which readonly alone does not
 * stop; anything else goes to ClickHouse, so a typo is its syntax error (400), not a refusal.
 */
export interface SqlHttpServer {
  readonly server: Server
  listen(port: number, host: string): Promise<number>
  close(): Promise<void>
}

export interface SqlHttpOptions {
  /** A new chDB session on the engine's data (a client of its own: settings are per session). */
  openSession: () => ClickHouseClient
  /** name → password; empty: no credentials asked (loopback only, config.ts sees to that). */
  users?: ReadonlyMap<string, string>
  maxQueryBytes?: number
  log: { warn(obj: object, msg?: string): void }
  /** After each query given to ClickHouse: its time in the engine (queued behind others excluded) and whether it succeeded. */
  onQuery?: (seconds: number, ok: boolean) => void
}

const READ_STATEMENTS = ['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXISTS', 'EXPLAIN']
/** Statements that change data, schema, settings or the server: refused before ClickHouse sees them. */
const WRITE_STATEMENTS = new Set([
  'INSERT', 'CREATE', 'ALTER', 'DROP', 'TRUNCATE', 'RENAME', 'DELETE', 'UPDATE', 'OPTIMIZE', 'SYSTEM', 'KILL', 'GRANT',
  'REVOKE', 'SET', 'USE', 'ATTACH', 'DETACH', 'EXCHANGE', 'UNDROP', 'BACKUP', 'RESTORE', 'MOVE', 'REPLACE', 'UPSERT',
])
/** Sessions kept for distinct limits; the least recently used beyond this is closed. */
const MAX_LIMIT_SESSIONS = 8

/** Error code → HTTP status, following ClickHouse's HTTPHandler. */
const STATUS_BY_TYPE: Record<string, number> = {
  SYNTAX_ERROR: 400,
  BAD_ARGUMENTS: 400,
  UNKNOWN_QUERY_PARAMETER: 400,
  BAD_QUERY_PARAMETER: 400,
  ILLEGAL_TYPE_OF_ARGUMENT: 400,
  TYPE_MISMATCH: 400,
  NUMBER_OF_ARGUMENTS_DOESNT_MATCH_FUNCTION: 400,
  UNKNOWN_TYPE_OF_QUERY: 400,
  QUERY_IS_PROHIBITED: 400,
  SUPPORT_IS_DISABLED: 400,
  EMPTY_QUERY: 400,
  UNKNOWN_TABLE: 404,
  UNKNOWN_DATABASE: 404,
  UNKNOWN_FUNCTION: 404,
  UNKNOWN_IDENTIFIER: 404,
  UNKNOWN_TYPE: 404,
  UNKNOWN_FORMAT: 404,
  UNKNOWN_SETTING: 404,
  UNKNOWN_AGGREGATE_FUNCTION: 404,
  READONLY: 403,
  ACCESS_DENIED: 403,
  QUERY_IS_TOO_LARGE: 413,
  TIMEOUT_EXCEEDED: 408,
  TOO_MANY_ROWS_OR_BYTES: 400,
  AUTHENTICATION_FAILED: 401,
  REQUIRED_PASSWORD: 401,
}

/** A read-only chDB session. */
interface Session {
  client: ClickHouseClient
  ready: Promise<void>
  /**
   * The database the session's last query ran in, when it succeeded: the next query there needs
   * no `USE` (a chDB call of its own, ~0.2 ms of the engine's CPU per query). After a failed
   * query it is unset, so the next one starts with a `USE`: after a failed multi-statement
   * query (`SELECT 1; DROP …`) chDB leaves the first statement's answer on the session, which
   * the `USE` reads away before the next query's answer.
   */
  database: string | undefined
}

class SqlRequestError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message)
  }
}

const CONTENT_TYPES: [RegExp, string][] = [
  [/^JSON/i, 'application/json; charset=UTF-8'],
  [/^(CSV|CSVWithNames|CSVWithNamesAndTypes)$/i, 'text/csv; charset=UTF-8; header=present'],
  [/^(TabSeparated|TSV)/i, 'text/tab-separated-values; charset=UTF-8'],
]

/** The query text without string literals, quoted identifiers and comments. */
export function withoutLiteralsAndComments(sql: string): string {
  return sql.replace(/'(?:\\.|''|[^'\\])*'|"(?:\\.|""|[^"\\])*"|`(?:\\.|``|[^`\\])*`|--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\//g, ' ')
}

/** The statement's first keyword (after comments and opening parentheses), upper case. */
export function statementKeyword(sql: string): string {
  const match = /^[\s(]*([A-Za-z]+)/.exec(withoutLiteralsAndComments(sql))
  return match?.[1]?.toUpperCase() ?? ''
}

/** Refuses what is not a read before it reaches ClickHouse; returns the refusal or undefined. */
export function readOnlyRefusal(sql: string): SqlRequestError | undefined {
  const keyword = statementKeyword(sql)
  if (keyword === '') return new SqlRequestError(62, 'SYNTAX_ERROR', 'Empty query')
  if (WRITE_STATEMENTS.has(keyword)) {
    return new SqlRequestError(164, 'READONLY', `This endpoint is read-only: ${keyword} is refused; only ${READ_STATEMENTS.join(', ')} queries are allowed`)
  }
  if (/\bINTO\s+OUTFILE\b/i.test(withoutLiteralsAndComments(sql))) {
    return new SqlRequestError(344, 'SUPPORT_IS_DISABLED', 'INTO OUTFILE is not allowed over HTTP')
  }
  return undefined
}

const ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '0': '\0', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

/**
 * A `param_<name>` value as the HTTP interface takes it (ClickHouse's escaped text form,
 * which @clickhouse/client produces) turned into the raw value chdb's binder expects: the
 * binder escapes strings itself, so the escapes must be undone first. Inside the quoted
 * strings of an Array/Map/Tuple value `\'` becomes `''`, a quote the binder leaves alone.
 */
export function bindableParamValue(text: string, type: string): string | null {
  if (text === '\\N') return null
  const composite = /^\s*(Nullable\(|LowCardinality\()*\s*(Array|Map|Tuple|Nested)\b/i.test(type)
  let out = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (ch === '\\' && i + 1 < text.length) {
      const next = text[++i]!
      out += composite && quoted && next === "'" ? "''" : (ESCAPES[next] ?? next)
    } else {
      if (composite && ch === "'") quoted = !quoted
      out += ch
    }
  }
  return out
}

function exceptionText(error: unknown): { code: number; type: string; text: string } {
  if (error instanceof SqlRequestError) {
    return { code: error.code, type: error.type, text: `Code: ${error.code}. DB::Exception: ${error.message}. (${error.type})` }
  }
  const e = error as { code?: unknown; type?: unknown; message?: unknown; cause?: { message?: unknown } }
  const original = typeof e.cause?.message === 'string' ? e.cause.message : ''
  const code = Number(e.code)
  const type = typeof e.type === 'string' ? e.type : 'UNKNOWN_EXCEPTION'
  // chDB's own text is already ClickHouse's; otherwise rebuild it from the parsed parts.
  if (/^Code: \d+\. DB::Exception:/.test(original)) return { code, type, text: original.trim() }
  const message = typeof e.message === 'string' ? e.message.trim() : String(error)
  return { code: Number.isFinite(code) ? code : 1001, type, text: `Code: ${Number.isFinite(code) ? code : 1001}. DB::Exception: ${message} (${type})` }
}

function send(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=UTF-8', ...headers })
  res.end(body)
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw new SqlRequestError(202, 'QUERY_IS_TOO_LARGE', `Query is too large (more than ${limit} bytes)`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** The query limits a request asks for, as `SET` statements; checked, since they are spliced into SQL. */
export function requestLimits(params: URLSearchParams): string[] {
  const limits: string[] = []
  for (const name of ['max_execution_time', 'max_result_rows']) {
    const value = params.get(name)
    if (value === null || value === '') continue
    if (!/^\d{1,12}(\.\d{1,6})?$/.test(value) || (name === 'max_result_rows' && value.includes('.'))) {
      throw new SqlRequestError(27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', `Cannot parse setting ${name} = ${JSON.stringify(value)}: not a number`)
    }
    limits.push(`SET ${name} = ${value}`)
  }
  const overflow = params.get('result_overflow_mode')
  if (overflow !== null && overflow !== '') {
    if (overflow !== 'throw' && overflow !== 'break') {
      throw new SqlRequestError(36, 'BAD_ARGUMENTS', `Unexpected value of result_overflow_mode: '${overflow}', must be 'throw' or 'break'`)
    }
    limits.push(`SET result_overflow_mode = '${overflow}'`)
  }
  return limits
}

function equalSecrets(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/** The credentials of a request as ClickHouse reads them: X-ClickHouse-User/Key, basic auth, user/password parameters. */
export function requestCredentials(req: IncomingMessage, params: URLSearchParams): { user: string; password: string } | undefined {
  const header = (name: string) => {
    const value = req.headers[name]
    return Array.isArray(value) ? value[0] : value
  }
  const headerUser = header('x-clickhouse-user')
  if (headerUser !== undefined) return { user: headerUser, password: header('x-clickhouse-key') ?? '' }
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header('authorization') ?? '')
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
  }
  const user = params.get('user')
  if (user !== null) return { user, password: params.get('password') ?? '' }
  return undefined
}

export function createSqlHttpServer(options: SqlHttpOptions): SqlHttpServer {
  const maxQueryBytes = options.maxQueryBytes ?? 1024 * 1024
  const users = options.users ?? new Map<string, string>()
  /** Read-only sessions by their limits ('' = none), most recently used last. */
  const sessions = new Map<string, Session>()
  // One request at a time: `USE <database>` is session state, and chDB runs one query at a time anyway.
  let queue: Promise<unknown> = Promise.resolve()

  function serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = queue.then(work, work)
    queue = run.catch(() => undefined)
    return run
  }

  /** The read-only session with these limits, opened (limits first, then readonly) on first use. */
  function sessionFor(limits: readonly string[]): Session {
    const key = limits.join('; ')
    let session = sessions.get(key)
    if (session) sessions.delete(key)
    else {
      const client = options.openSession()
      const ready = (async () => {
        for (const statement of [...limits, 'SET readonly = 1']) await client.command({ query: statement })
      })()
      session = { client, ready, database: undefined }
      // A session that could not be set up is not kept: the next request tries again.
      ready.catch(() => sessions.get(key) === session && sessions.delete(key))
    }
    sessions.set(key, session)
    for (const [oldKey, old] of sessions) {
      if (sessions.size <= MAX_LIMIT_SESSIONS) break
      sessions.delete(oldKey)
      void old.client.close().catch(() => undefined)
    }
    return session
  }

  function authenticate(req: IncomingMessage, params: URLSearchParams): void {
    if (users.size === 0) return
    const credentials = requestCredentials(req, params)
    const expected = credentials && users.get(credentials.user)
    // Compare against a dummy for unknown users: same work, same answer.
    const matches = equalSecrets(credentials?.password ?? '', expected ?? '\u0000no-such-user')
    if (!credentials || expected === undefined || !matches) {
      throw new SqlRequestError(
        516,
        'AUTHENTICATION_FAILED',
        `${credentials?.user ?? 'default'}: Authentication failed: password is incorrect, or there is no user with such name`,
      )
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/ping' || url.pathname === '/replicas_status') return send(res, 200, 'Ok.\n')
    if (url.pathname !== '/') return send(res, 404, `There is no handle ${url.pathname}\n`)
    if (req.method !== 'GET' && req.method !== 'POST') return send(res, 405, `Method ${req.method} is not allowed\n`, { allow: 'GET, POST' })

    const params = url.searchParams
    authenticate(req, params)
    const limits = requestLimits(params)
    const body = req.method === 'POST' ? await readBody(req, maxQueryBytes) : ''
    const urlQuery = params.get('query') ?? ''
    if (req.method === 'GET' && urlQuery === '') return send(res, 200, 'Ok.\n')
    const sql = urlQuery !== '' && body !== '' ? `${urlQuery}\n${body}` : urlQuery + body

    const refusal = readOnlyRefusal(sql)
    if (refusal) throw refusal
    const database = params.get('database') || 'default'
    if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) {
      throw new SqlRequestError(81, 'UNKNOWN_DATABASE', `Database ${database} does not exist`)
    }
    const defaultFormat = params.get('default_format') || 'TabSeparated'
    if (!/^[A-Za-z0-9]{1,64}$/.test(defaultFormat)) {
      throw new SqlRequestError(73, 'UNKNOWN_FORMAT', `Unknown format ${defaultFormat}`)
    }
    const queryParams: Record<string, string | null> = {}
    for (const [key, value] of params) {
      if (!key.startsWith('param_')) continue
      const name = key.slice(6)
      const placeholder = new RegExp(`\\{\\s*${name.replace(/\W/g, '')}\\s*:\\s*([^}]+)\\}`).exec(sql)
      queryParams[name] = bindableParamValue(value, placeholder?.[1] ?? 'String')
    }

    const output = await serialized(async () => {
      const session = sessionFor(limits)
      await session.ready
      const startedAt = performance.now()
      let ok = false
      try {
        if (session.database !== database) await session.client.command({ query: `USE \`${database}\`` })
        session.database = undefined
        const result = await session.client.exec({
          query: sql,
          ...(Object.keys(queryParams).length > 0 ? { query_params: queryParams } : {}),
          // Not a SET: chdb/connection hands default_format to the engine as the output format.
          clickhouse_settings: { default_format: defaultFormat as DataFormat },
        })
        const chunks: Buffer[] = []
        for await (const chunk of result.stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk))
        ok = true
        session.database = database
        return Buffer.concat(chunks)
      } finally {
        options.onQuery?.((performance.now() - startedAt) / 1_000, ok)
      }
    })
    const format = /\bFORMAT\s+([A-Za-z0-9]+)\s*;?\s*$/i.exec(withoutLiteralsAndComments(sql))?.[1] ?? defaultFormat
    const contentType = CONTENT_TYPES.find(([pattern]) => pattern.test(format))?.[1] ?? 'text/plain; charset=UTF-8'
    send(res, 200, output, {
      'content-type': contentType,
      'x-clickhouse-format': format,
      'x-clickhouse-query-id': params.get('query_id') || randomUUID(),
      'x-clickhouse-timezone': 'UTC',
    })
  }

  const server = createServer((req, res) => {
    answer(req, res).catch((error: unknown) => {
      const { code, type, text } = exceptionText(error)
      const status = STATUS_BY_TYPE[type] ?? 500
      if (status >= 500) options.log.warn({ err: error }, 'SQL over HTTP failed')
      if (!res.headersSent) send(res, status, `${text}\n`, { 'x-clickhouse-exception-code': String(code) })
      else res.destroy()
    })
  })

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen(port, host, () => {
          const address = server.address()
          resolve(typeof address === 'object' && address !== null ? address.port : port)
        })
      })
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      const open = [...sessions.values()]
      sessions.clear()
      await Promise.all(open.map((session) => session.client.close().catch(() => undefined)))
    },
  }
}
