import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { topicNames } from '@clickjoin/contracts'
import { tempDir, waitFor } from '@clickjoin/local-stack/testing'
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
    const env = testSinkEnv({ CLICKHOUSE_DATA_DIR: await tempDir('sink-sql') })
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
    expect(syntax.status).toBe(403) // not a read statement
    const bad = await get({ query: 'SELECT * FROM nowhere.nothing' })
    expect(bad.status).toBe(404)
    expect(await bad.text()).toMatch(/^Code: (60|81)\. DB::Exception: .*\((UNKNOWN_TABLE|UNKNOWN_DATABASE)\)/)
    const parse = await get({ query: 'SELECT (' })
    expect(parse.status).toBe(400)
    expect(parse.headers.get('x-clickhouse-exception-code')).toBe('62')
    await expect(client.query({ query: 'SELECT * FROM nowhere.nothing' })).rejects.toMatchObject({ code: expect.stringMatching(/60|81/) })
  })

  it('leaves the writer session untouched: the sink keeps storing after read-only queries', async () => {
    const topics = topicNames(test.config.KAFKA_TOPIC_PREFIX)
    await produce(test.kafka, [{ topic: topics.clicks, key: 'h4', value: encodeClick(click({ click_id: 'h4', ts: Date.UTC(2026, 10, 20, 5) })) }])
    await waitFor(() => get({ query: `SELECT count() FROM ${db}.clicks` }).then((r) => r.text()), (t) => t === '4\n', 30_000, '4 clicks')
  })
})
