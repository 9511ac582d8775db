import { InvalidArgumentError, Option, type Command } from 'commander'
import { createBatchingProducer, createKafka } from '@clickjoin/kafka'
import { CliError, runSql, type Endpoints } from './admin-client.ts'

interface DeadLetterRow {
  source_topic: string
  partition: number
  offset: string
  key: string
  payload: string
  payload_encoding: 'utf8' | 'base64'
}

/** `<source_topic>/<partition>/<offset>`: how a dead letter is named on the command line. */
export function parseDeadLetterId(id: string): { topic: string; partition: number; offset: string } {
  const match = /^(.+)\/(\d{1,10})\/(\d{1,19})$/.exec(id)
  if (!match) throw new InvalidArgumentError(`"${id}" is not <source_topic>/<partition>/<offset>`)
  return { topic: match[1]!, partition: Number(match[2]), offset: match[3]! }
}

const database = (name: string) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new InvalidArgumentError('must be a database name')
  return name
}

/**
 * `clickjoin dead-letters`: what the sink set aside (SPEC §6 `dead_letters`: messages no
 * consumer could process, rows ClickHouse refused), listed from ClickHouse; `replay` sends the
 * chosen ones' original messages back to their topics, under their keys, once the cause is fixed.
 */
export function registerDeadLetterCommands(program: Command, endpoints: () => Endpoints): void {
  const deadLetters = program
    .command('dead-letters')
    .description('list the dead letters, and replay the chosen ones after a fix')
    .addOption(new Option('--database <name>', 'the ClickHouse database').env('CLICKHOUSE_DATABASE').default('clickjoin').argParser(database))

  deadLetters
    .command('list', { isDefault: true })
    .description('the latest dead letters: where from, when, why')
    .option('--topic <topic>', 'only those from this source topic')
    .option('--limit <n>', 'at most this many', (v) => Number(v), 100)
    .action(async (o: { topic?: string; limit: number }) => {
      const db = deadLetters.opts<{ database: string }>().database
      const rows = await runSql(
        endpoints(),
        `SELECT concat(source_topic, '/', toString(partition), '/', toString(offset)) AS id, received_at, key, reason
         FROM ${db}.dead_letters FINAL
         ${o.topic === undefined ? '' : 'WHERE source_topic = {topic:String}'}
         ORDER BY received_at DESC LIMIT {limit:UInt32}`,
        'PrettyCompactMonoBlock',
        { limit: String(o.limit), ...(o.topic === undefined ? {} : { topic: o.topic }) },
      )
      process.stdout.write(rows === '' ? 'no dead letters\n' : rows)
    })

  deadLetters
    .command('replay <ids...>')
    .description('send these dead letters (<source_topic>/<partition>/<offset>, as `list` shows) back to their topics')
    .addOption(new Option('--kafka <brokers>', 'Kafka bootstrap brokers, comma-separated').env('KAFKA_BROKERS').default('127.0.0.1:9092'))
    .action(async (ids: string[], o: { kafka: string }) => {
      const db = deadLetters.opts<{ database: string }>().database
      const wanted = ids.map(parseDeadLetterId)
      const text = await runSql(
        endpoints(),
        `SELECT source_topic, partition, toString(offset) AS offset, key, payload, payload_encoding
         FROM ${db}.dead_letters FINAL
         WHERE (source_topic, partition, offset) IN {ids:Array(Tuple(String, UInt32, UInt64))}`,
        'JSONEachRow',
        { ids: `[${wanted.map((w) => `('${w.topic.replace(/[\\']/g, '\\$&')}',${w.partition},${w.offset})`).join(',')}]` },
      )
      const found = text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as DeadLetterRow)
      const missing = ids.filter((_, i) => !found.some((r) => r.source_topic === wanted[i]!.topic && r.partition === wanted[i]!.partition && r.offset === wanted[i]!.offset))
      if (missing.length > 0) throw new CliError(`no such dead letter: ${missing.join(', ')}`)
      const kafka = createKafka({ brokers: o.kafka.split(',').map((b) => b.trim()), clientId: 'clickjoin-cli' })
      const producer = createBatchingProducer(kafka, { lingerMs: 5 })
      await producer.start()
      try {
        // Each resolves once Kafka acknowledged it: "replayed" means stored again.
        await Promise.all(
          found.map((r) => producer.send(r.source_topic, { key: r.key, value: Buffer.from(r.payload, r.payload_encoding) })),
        )
      } finally {
        await producer.stop()
      }
      for (const r of found) console.log(`replayed ${r.source_topic}/${r.partition}/${r.offset}`)
    })
}
