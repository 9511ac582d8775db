import { freePort, startPipeline, type Pipeline } from '@clickjoin/local-stack'
import { tempDir, testStackEnv, uniqueName } from '@clickjoin/local-stack/testing'

/** A whole pipeline (three service processes, as under `npm start`) isolated by unique names. */
export interface TestPipeline {
  pipeline: Pipeline
  ingest: string
  sql: string
  db: string
  /** PUT an admin resource; throws unless 200. */
  admin(path: string, body: object): Promise<void>
  /** Rows of a query over the sink's SQL endpoint. */
  query<T>(text: string): Promise<T[]>
}

export async function startTestPipeline(label: string, options: { adminToken: string; clickIdKeys: string }): Promise<TestPipeline> {
  const stackEnv = testStackEnv()
  const db = uniqueName(label)
  const pipeline = await startPipeline({
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      KAFKA_BROKERS: stackEnv.kafkaBrokers.join(','),
      REDIS_URL: stackEnv.redisUrl,
      ...(stackEnv.clickhouseUrl ? { CLICKHOUSE_URL: stackEnv.clickhouseUrl } : {}),
      KAFKA_TOPIC_PREFIX: `${uniqueName(label)}.`,
      // Consumer groups are per deployment, like the topics: never shared with another test.
      ATTRIBUTOR_GROUP_ID: uniqueName(`${label}-attributor`),
      SINK_CONSUMER_GROUP: uniqueName(`${label}-sink`),
      DISPATCHER_GROUP_ID: uniqueName(`${label}-dispatcher`),
      REDIS_KEY_PREFIX: `${uniqueName(label)}:`,
      CLICK_ID_KEYS: options.clickIdKeys,
      ADMIN_TOKEN: options.adminToken,
      ATTRIBUTION_GRACE_MS: '3000',
      CLICKHOUSE_DATABASE: db,
      CLICKHOUSE_DATA_DIR: await tempDir(`${label}-chdb`),
    },
    logDir: await tempDir(`${label}-logs`),
    ports: { ingest: await freePort(), attributor: await freePort(), sink: await freePort(), clickhouseHttp: await freePort() },
  })
  return {
    pipeline,
    ingest: pipeline.ingestUrl,
    sql: pipeline.sqlUrl,
    db,
    async admin(path, body) {
      const res = await fetch(`${pipeline.ingestUrl}/admin/${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${options.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      if (res.status !== 200) throw new Error(`PUT /admin/${path}: ${res.status} ${await res.text()}`)
    },
    async query<T>(text: string) {
      const res = await fetch(`${pipeline.sqlUrl}/?query=${encodeURIComponent(`${text} FORMAT JSONEachRow`)}`)
      const body = await res.text()
      if (res.status !== 200) throw new Error(`SQL failed (${res.status}): ${body}`)
      return body
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as T)
    },
  }
}
