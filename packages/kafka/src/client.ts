import { Kafka, logLevel, type logCreator } from 'kafkajs'

export interface KafkaConnectionOptions {
  brokers: string[]
  clientId: string
  /** Per-request timeout; also bounds how long a send can hang on a dead broker. */
  requestTimeoutMs?: number
  connectionTimeoutMs?: number
  /** kafkajs retries per request before an error reaches us. */
  retries?: number
  log?: (entry: { level: string; message: string; [k: string]: unknown }) => void
}

const levelNames: Record<number, string> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
}

/** kafkajs logs through our sink as one JSON-able entry per line, warnings and errors only. */
function jsonLogCreator(log: NonNullable<KafkaConnectionOptions['log']>): logCreator {
  return () =>
    ({ namespace, level, log: entry }) => {
      const { message, ...rest } = entry
      log({ level: levelNames[level] ?? 'info', message: `kafkajs ${namespace}: ${message}`, ...rest })
    }
}

export function createKafka(options: KafkaConnectionOptions): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    connectionTimeout: options.connectionTimeoutMs ?? 3_000,
    requestTimeout: options.requestTimeoutMs ?? 10_000,
    retry: { retries: options.retries ?? 3, initialRetryTime: 100, maxRetryTime: 2_000 },
    logLevel: logLevel.WARN,
    logCreator: jsonLogCreator(options.log ?? ((e) => console.error(JSON.stringify(e)))),
  })
}
