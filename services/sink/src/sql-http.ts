import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { DataFormat } from '@clickhouse/client'
import type { ClickHouseClient } from '@clickjoin/clickhouse'

/**
 * Read-only SQL over HTTP for the embedded engine, compatible with the query side of the
 * ClickHouse HTTP interface: `query` in the URL and/or the body (concatenated with a
 * newline, as ClickHouse does), `FORMAT` in the query, `default_format` (TabSeparated),
 * `database`, `param_<name>` for `{name:Type}` placeholders, `GET /ping`. Errors are
 * ClickHouse's own `Code: N. DB::Exception: … (TYPE)` text with a 4xx/5xx status. Other URL
 * parameters (settings @clickhouse/client sends, credentials, query_id) are ignored.
 *
 * Read-only is enforced by ClickHouse itself: `session` must be a chDB session of its own
 * (never the writer's), which is put into `readonly = 1` once and for all. ClickHouse then
 * refuses writes, DDL, table functions that reach outside (file, url) and any setting
 * change, including a change back of `readonly`. The statement allow-list in front only gives
 * a clearer message and refuses `INTO OUTFILE`, which readonly alone does not stop.
 */
export interface SqlHttpServer {
  readonly server: Server
  listen(port: number, host: string): Promise<number>
  close(): Promise<void>
}

export interface SqlHttpOptions {
  session: ClickHouseClient
  maxQueryBytes?: number
  log: { warn(obj: object, msg?: string): void }
}

const READ_STATEMENTS = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXISTS', 'EXPLAIN'])

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
  if (!READ_STATEMENTS.has(keyword)) {
    return new SqlRequestError(
      164,
      'READONLY',
      `This endpoint is read-only: ${keyword} is refused; only ${[...READ_STATEMENTS].join(', ')} queries are allowed`,
    )
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

export function createSqlHttpServer(options: SqlHttpOptions): SqlHttpServer {
  const maxQueryBytes = options.maxQueryBytes ?? 1024 * 1024
  let readOnly: Promise<void> | undefined
  // One request at a time: `USE <database>` is session state of the one read-only session.
  let queue: Promise<unknown> = Promise.resolve()

  function serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = queue.then(work, work)
    queue = run.catch(() => undefined)
    return run
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost')
    if (url.pathname === '/ping' || url.pathname === '/replicas_status') return send(res, 200, 'Ok.\n')
    if (url.pathname !== '/') return send(res, 404, `There is no handle ${url.pathname}\n`)
    if (req.method !== 'GET' && req.method !== 'POST') return send(res, 405, `Method ${req.method} is not allowed\n`, { allow: 'GET, POST' })

    const params = url.searchParams
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
      readOnly ??= options.session.command({ query: 'SET readonly = 1' }).then(() => undefined)
      await readOnly
      await options.session.command({ query: `USE \`${database}\`` })
      const result = await options.session.exec({
        query: sql,
        ...(Object.keys(queryParams).length > 0 ? { query_params: queryParams } : {}),
        // Not a SET: chdb/connection hands default_format to the engine as the output format.
        clickhouse_settings: { default_format: defaultFormat as DataFormat },
      })
      const chunks: Buffer[] = []
      for await (const chunk of result.stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk))
      return Buffer.concat(chunks)
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
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}
