import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '@clickjoin/config'
import { cacheDir } from '@clickjoin/local-stack'
import { sinkConfigFromEnv } from '../src/config.ts'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { topicNames } from '@clickjoin/contracts'
import { waitFor } from '@clickjoin/local-stack/testing'
import { click, encodeClick, produce, startTestSink, testSinkEnv, type TestSink } from './harness.ts'

// SQL over HTTP exists in embedded mode only, so this file always runs the sink embedded.
describe('read-only SQL over HTTP (embedded mode)', () => {
  let test: TestSink
  let base: string
  let db: string
  let client: ClickHouseClient

  const get = (params: Record<string, string>, path = '/') => fetch(`${base}${path}?${new URLSearchParams(params)}`)
  const post = (body: string, params: Record<string, string> = {}) =>
    fetch(`${base}/?${new URLSearchParams(params)}`, { method: 'POST', body })

  beforeAll(async () => {
    const env = testSinkEnv()
    delete env['CLICKHOUSE_URL']
    test = await startTestSink(env)
    base = `http://127.0.0.1:${test.sink.sqlPort}`
    db = test.config.CLICKHOUSE_DATABASE
    client = createClient({ url: base, log: { level: ClickHouseLogLevel.OFF } })
    const topics = topicNames(test.config.KAFKA_TOPIC_PREFIX)
    await produce(
      test.kafka,
      ['h1', 'h2', 'h3'].map((id, i) => ({ topic: topics.clicks, key: id, value: encodeClick(click({ click_id: id, ts: Date.UTC(2026, 10, 20, i) })) })),
    )
    await waitFor(() => get({ query: `SELECT count() FROM ${db}.clicks` }).then((r) => r.text()), (t) => t === '3\n', 30_000, '3 clicks')
  })
  afterAll(async () => {
    await client?.close()
    await test?.stop()
  })

  it('listens on 127.0.0.1 by default', () => {
    expect(test.config.CLICKHOUSE_HTTP_HOST).toBe('127.0.0.1')
    expect(test.sink.sqlAddress?.address).toBe('127.0.0.1')
  })

  it('answers curl-style GET /?query= in TabSeparated, and /ping', async () => {
    const res = await fetch(`${base}/?query=SELECT+count()+FROM+${db}.clicks`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('3\n')
    expect(res.headers.get('content-type')).toMatch(/tab-separated/)
    expect(await (await fetch(`${base}/ping`)).text()).toBe('Ok.\n')
    expect(await (await fetch(`${base}/`)).text()).toBe('Ok.\n')
  })

  it('takes the query from the body, joins URL query and body, honours FORMAT, default_format, database and param_', async () => {
    expect(await (await post(`SELECT click_id FROM ${db}.clicks ORDER BY click_id FORMAT CSV`)).text()).toBe('"h1"\n"h2"\n"h3"\n')
    const joined = await post('ORDER BY click_id LIMIT 1', { query: `SELECT click_id FROM ${db}.clicks` })
    expect(await joined.text()).toBe('h1\n')
    const json = await get({ query: 'SELECT click_id FROM clicks WHERE click_id = {id:String}', database: db, param_id: 'h2', default_format: 'JSONEachRow' })
    expect(json.headers.get('content-type')).toMatch(/json/)
    expect(await json.text()).toBe('{"click_id":"h2"}\n')
  })

  it('reads unqualified names from each request\'s database, also when requests alternate between databases or name an unknown one', async () => {
    const count = (database: string | undefined, table: string) =>
      get({ query: `SELECT count() FROM ${table}`, ...(database === undefined ? {} : { database }) }).then(async (r) => `${r.status} ${await r.text()}`)
    expect(await count(db, 'clicks')).toBe('200 3\n')
    expect(await count(db, 'clicks')).toBe('200 3\n')
    expect(await count('system', 'one')).toBe('200 1\n')
    expect(await count(db, 'clicks')).toMatch(/^200 3\n$/)
    expect(await count('no_such_database_here', 'clicks')).toMatch(/^404 Code: 81\./)
    expect(await count(db, 'clicks')).toBe('200 3\n')
    // No database named: `default`, as ClickHouse does, not the one the previous request named.
    expect(await count(undefined, 'clicks')).toMatch(/^404 Code: 60\./)
    // Each query given to ClickHouse is counted on the sink's /metrics, by success.
    const metrics = await (await fetch(`http://127.0.0.1:${test.sink.port}/metrics`)).text()
    expect(Number(/^clickjoin_sink_sql_http_query_duration_seconds_count\{[^}]*ok="true"[^}]*\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(5)
    expect(Number(/^clickjoin_sink_sql_http_query_duration_seconds_count\{[^}]*ok="false"[^}]*\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2)
  })

  it('answers a query in the same database right after a failed multi-statement one with its own answer', async () => {
    const count = () => get({ query: 'SELECT count() FROM clicks', database: db }).then(async (r) => `${r.status} ${await r.text()}`)
    expect(await count()).toBe('200 3\n')
    for (const sql of ['SELECT 1; SELECT * FROM no_such_table_here', 'SELECT 7; SELECT 8; SELECT throwIf(1)']) {
      const failed = await get({ query: sql, database: db })
      expect(failed.status, sql).toBeGreaterThanOrEqual(400)
      expect(await count(), sql).toBe('200 3\n')
      expect(await count(), sql).toBe('200 3\n')
    }
    const both = await get({ query: 'SELECT 1; SELECT 2', database: db })
    expect(`${both.status} ${await both.text()}`).toBe('200 1\n2\n')
    expect(await count()).toBe('200 3\n')
  })

  it('works with @clickhouse/client query() and a {name:Type} parameter', async () => {
    const rs = await client.query({ query: 'SELECT {n:UInt32} AS n', query_params: { n: 5 }, format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([{ n: 5 }])
    const clicks = await client.query({
      query: `SELECT click_id, is_bot FROM ${db}.clicks WHERE click_id IN {ids:Array(String)} ORDER BY click_id`,
      query_params: { ids: ['h1', 'h3', "it's"] },
      format: 'JSONEachRow',
    })
    expect(await clicks.json()).toEqual([
      { click_id: 'h1', is_bot: 0 },
      { click_id: 'h3', is_bot: 0 },
    ])
    const tricky = "tab\there 'quoted' back\\slash ü"
    const echoed = await client.query({
      query: 'SELECT {s:String} AS s, {a:Array(String)} AS a, {d:DateTime64(3)} AS d',
      query_params: { s: tricky, a: [tricky, 'x'], d: new Date(Date.UTC(2026, 10, 20, 1, 2, 3)) },
      format: 'JSONEachRow',
    })
    expect(await echoed.json()).toEqual([{ s: tricky, a: [tricky, 'x'], d: '2026-11-20 01:02:03.000' }])
  })

  it('refuses writes and DDL with a non-2xx and ClickHouse-style message, and the data stays', async () => {
    for (const sql of [
      `INSERT INTO ${db}.clicks (click_id) VALUES ('x')`,
      `DROP TABLE ${db}.clicks`,
      `ALTER TABLE ${db}.clicks DELETE WHERE 1`,
      `CREATE TABLE ${db}.evil (x UInt8) ENGINE = Memory`,
      `SELECT 1; DROP TABLE ${db}.clicks`,
      `SELECT * FROM file('/etc/passwd', 'LineAsString')`,
      `SELECT 1 INTO OUTFILE '/tmp/clickjoin-sink-outfile.txt'`,
      `SELECT 1 SETTINGS readonly = 0`,
    ]) {
      const res = await post(sql)
      expect(res.status, sql).toBeGreaterThanOrEqual(400)
      expect(await res.text(), sql).toMatch(/^Code: \d+\. DB::Exception: .+/)
    }
    const insert = await post(`INSERT INTO ${db}.clicks (click_id) VALUES ('x')`)
    expect(await insert.text()).toMatch(/read-only: INSERT is refused/)
    await expect(client.command({ query: `DROP TABLE ${db}.clicks` })).rejects.toThrow(/read-only|readonly/i)
    expect(await (await get({ query: `SELECT count() FROM ${db}.clicks` })).text()).toBe('3\n')
  })

  it('reports query errors with the ClickHouse code and status', async () => {
    const syntax = await get({ query: 'SELEC 1' })
    expect(syntax.status).toBe(400) // a typo is ClickHouse's syntax error, not a refusal
    expect(syntax.headers.get('x-clickhouse-exception-code')).toBe('62')
    expect(await syntax.text()).toMatch(/^Code: 62\. DB::Exception: .*Syntax error.*\(SYNTAX_ERROR\)/s)
    const bad = await get({ query: 'SELECT * FROM nowhere.nothing' })
    expect(bad.status).toBe(404)
    expect(await bad.text()).toMatch(/^Code: (60|81)\. DB::Exception: .*\((UNKNOWN_TABLE|UNKNOWN_DATABASE)\)/)
    const parse = await get({ query: 'SELECT (' })
    expect(parse.status).toBe(400)
    expect(parse.headers.get('x-clickhouse-exception-code')).toBe('62')
    await expect(client.query({ query: 'SELECT * FROM nowhere.nothing' })).rejects.toMatchObject({ code: expect.stringMatching(/60|81/) })
  })

  it('honours max_execution_time, max_result_rows and result_overflow_mode per request, also from @clickhouse/client', async () => {
    const started = Date.now()
    const slow = await get({ query: 'SELECT count() FROM numbers(100000000000)', max_execution_time: '1' })
    expect(slow.status).toBe(408)
    expect(await slow.text()).toMatch(/\(TIMEOUT_EXCEEDED\)/)
    expect(Date.now() - started).toBeLessThan(30_000)
    const tooMany = await get({ query: 'SELECT number FROM numbers(100)', max_result_rows: '10', result_overflow_mode: 'throw' })
    expect(tooMany.status).toBe(400)
    expect(await tooMany.text()).toMatch(/\(TOO_MANY_ROWS_OR_BYTES\)/)
    const cut = await get({ query: 'SELECT number FROM numbers(100000) FORMAT TSV', max_result_rows: '10', result_overflow_mode: 'break' })
    expect(cut.status).toBe(200)
    expect((await cut.text()).split('\n').filter(Boolean).length).toBeLessThan(100_000)
    // Without limits the next request is not limited: limits stay with their own session.
    expect(await (await get({ query: 'SELECT count() FROM (SELECT number FROM numbers(100))' })).text()).toBe('100\n')
    expect((await (await get({ query: 'SELECT number FROM numbers(100) FORMAT TSV' })).text()).split('\n').filter(Boolean)).toHaveLength(100)
    await expect(
      client.query({ query: 'SELECT count() FROM numbers(100000000000)', clickhouse_settings: { max_execution_time: 1 } }),
    ).rejects.toMatchObject({ type: 'TIMEOUT_EXCEEDED' })
    const bad = await get({ query: 'SELECT 1', max_execution_time: '1; DROP TABLE x' })
    expect(bad.status).toBeGreaterThanOrEqual(400)
  })

  it('leaves the writer session untouched: the sink keeps storing after read-only queries', async () => {
    const topics = topicNames(test.config.KAFKA_TOPIC_PREFIX)
    await produce(test.kafka, [{ topic: topics.clicks, key: 'h4', value: encodeClick(click({ click_id: 'h4', ts: Date.UTC(2026, 10, 20, 5) })) }])
    await waitFor(() => get({ query: `SELECT count() FROM ${db}.clicks` }).then((r) => r.text()), (t) => t === '4\n', 30_000, '4 clicks')
  })
})

describe('SQL over HTTP with CLICKHOUSE_HTTP_USERS', () => {
  let test: TestSink
  let base: string
  let db: string

  beforeAll(async () => {
    const env = testSinkEnv({ CLICKHOUSE_HTTP_USERS: 'analyst:s3cret-pw,bi:other-pw' })
    delete env['CLICKHOUSE_URL']
    test = await startTestSink(env)
    base = `http://127.0.0.1:${test.sink.sqlPort}`
    db = test.config.CLICKHOUSE_DATABASE
    const topics = topicNames(test.config.KAFKA_TOPIC_PREFIX)
    await produce(test.kafka, [{ topic: topics.clicks, key: 'u1', value: encodeClick(click({ click_id: 'u1', ts: Date.UTC(2026, 10, 20) })) }])
    const authorization = `Basic ${Buffer.from('analyst:s3cret-pw').toString('base64')}`
    await waitFor(
      () => fetch(`${base}/?query=${encodeURIComponent(`SELECT count() FROM ${db}.clicks`)}`, { headers: { authorization } }).then((r) => r.text()),
      (t) => t === '1\n',
      30_000,
      'the click',
    )
  })
  afterAll(async () => {
    await test?.stop()
  })

  const query = (headers: Record<string, string>, params = '') =>
    fetch(`${base}/?query=${encodeURIComponent(`SELECT click_id FROM ${db}.clicks`)}${params}`, { headers })

  it('answers 401 to a missing or wrong user or password, and serves the right ones (basic auth, X-ClickHouse-User/Key, URL)', async () => {
    const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` })
    for (const headers of [{}, basic('analyst', 'wrong'), basic('nobody', 's3cret-pw'), { 'x-clickhouse-user': 'bi', 'x-clickhouse-key': 's3cret-pw' }]) {
      const res = await query(headers)
      expect(res.status, JSON.stringify(headers)).toBe(401)
      expect(res.headers.get('x-clickhouse-exception-code')).toBe('516')
      expect(await res.text()).toMatch(/^Code: 516\. DB::Exception: .*Authentication failed.*\(AUTHENTICATION_FAILED\)/)
    }
    expect(await (await query(basic('analyst', 's3cret-pw'))).text()).toBe('u1\n')
    expect(await (await query({ 'x-clickhouse-user': 'bi', 'x-clickhouse-key': 'other-pw' })).text()).toBe('u1\n')
    expect(await (await query({}, '&user=bi&password=other-pw')).text()).toBe('u1\n')
    expect((await fetch(`${base}/ping`)).status).toBe(200) // health checks need no credentials, as in ClickHouse
  })

  it('works from @clickhouse/client with username and password', async () => {
    const right = createClient({ url: base, username: 'analyst', password: 's3cret-pw', log: { level: ClickHouseLogLevel.OFF } })
    const wrong = createClient({ url: base, username: 'analyst', password: 'nope', log: { level: ClickHouseLogLevel.OFF } })
    try {
      const rs = await right.query({ query: `SELECT click_id FROM ${db}.clicks`, format: 'JSONEachRow' })
      expect(await rs.json()).toEqual([{ click_id: 'u1' }])
      await expect(wrong.query({ query: 'SELECT 1' })).rejects.toMatchObject({ code: '516' })
    } finally {
      await Promise.all([right.close(), wrong.close()])
    }
  })

  it('works from clickhouse-connect (Python) with username and password', async () => {
    // Installed by `npm test` (packages/local-stack/src/install.ts) into .cache/python.
    const python = path.join(cacheDir, 'python', 'bin', 'python')
    expect(existsSync(python), `${python}: run scripts/run.sh install`).toBe(true)
    const script = [
      'import sys, clickhouse_connect',
      'port, db, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]',
      "client = clickhouse_connect.get_client(host='127.0.0.1', port=port, username='analyst', password=password)",
      "print(client.query(f'SELECT click_id FROM {db}.clicks').result_rows)",
    ].join('\n')
    const run = (password: string) => promisify(execFile)(python, ['-c', script, String(test.sink.sqlPort), db, password], { timeout: 60_000 })
    const { stdout } = await run('s3cret-pw')
    expect(stdout.trim()).toBe("[('u1',)]")
    await expect(run('wrong')).rejects.toMatchObject({ stderr: expect.stringMatching(/516|Authentication failed/) as unknown })
  })

  it('refuses to listen beyond loopback without users, naming CLICKHOUSE_HTTP_HOST', () => {
    let error: unknown
    try {
      sinkConfigFromEnv({ CLICKHOUSE_HTTP_HOST: '0.0.0.0' })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems.map((p) => p.variable)).toEqual(['CLICKHOUSE_HTTP_HOST'])
    expect(sinkConfigFromEnv({ CLICKHOUSE_HTTP_HOST: '0.0.0.0', CLICKHOUSE_HTTP_USERS: 'a:b' }).CLICKHOUSE_HTTP_USERS.get('a')).toBe('b')
  })
})
