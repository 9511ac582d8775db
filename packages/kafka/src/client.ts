import { Kafka, logLevel, type logCreator } from 'kafkajs'

export interface KafkaConnectionOptions {
  brokers: string[]
  clientId: string
  /** Per-request timeout; also bounds how long a send can hang on a dead broker. */
  requestTimeoutMs?: number
  connectionTimeoutMs?: number
  /** kafkajs retries per request before an error reaches us. */
  retries?: number
  /** Where kafkajs' own log lines go (each at level `debug`); dropped when omitted. */
  log?: (entry: { level: string; message: string; [k: string]: unknown }) => void
}

const levelNames: Record<number, string> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
}

/**
 * kafkajs' own warnings and errors reach our log at level `debug` (its level kept as
 * `kafkajsLevel`). kafkajs logs at ERROR what it retries by itself — a young broker without a
 * group coordinator yet, a leader moving — so a healthy start would print dozens of error
 * lines. What matters reaches us another way and is logged by us at warn or error: a send that
 * failed, a consumer that crashed and restarts, an admin call that threw.
 */
function jsonLogCreator(log: NonNullable<KafkaConnectionOptions['log']>): logCreator {
  return () =>
    ({ namespace, level, log: entry }) => {
      const { message, ...rest } = entry
      log({ ...rest, level: 'debug', kafkajsLevel: levelNames[level] ?? 'info', message: `kafkajs ${namespace}: ${message}` })
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
    logCreator: jsonLogCreator(options.log ?? (() => undefined)),
  })
}
