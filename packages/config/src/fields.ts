import { z } from 'zod'

/**
 * One environment variable: text in, a typed value out. Builders given a default parse it
 * like a set value, so a bad default fails the same way a bad variable would.
 */
export type EnvField<T> = z.ZodType<T, string | undefined>

/** A field that reads `text` with `read`, which answers undefined when the text is wrong. */
function envField<T>(expected: string, read: (text: string) => T | undefined, fallback?: string): EnvField<T> {
  const field = z.string().transform((raw, ctx) => {
    const value = read(raw.trim())
    if (value !== undefined) return value
    ctx.issues.push({ code: 'custom', message: `must be ${expected}`, input: raw })
    return z.NEVER
  })
  return (fallback === undefined ? field : field.prefault(fallback)) as EnvField<T>
}

/** A TCP port; 0 lets the OS choose one, which tests use. */
export function port(defaultPort?: number): EnvField<number> {
  return envField('a port number 0–65535', (text) => integerIn(text, 0, 65_535), optionalText(defaultPort))
}

/** A positive integer: a count, a size, a partition number. */
export function positiveInt(defaultValue?: number): EnvField<number> {
  return envField('a positive integer', (text) => integerIn(text, 1, Number.MAX_SAFE_INTEGER), optionalText(defaultValue))
}

const MS_PER_UNIT = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** A duration in milliseconds: `250` or `250ms`, `30s`, `5m`, `1h`, `1d`. */
export function durationMs(defaultValue?: number | string): EnvField<number> {
  return envField(
    'a duration such as 500, 500ms, 30s, 5m, 1h or 1d',
    (text) => {
      const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text)
      if (match === null) return undefined
      const ms = Number(match[1]) * MS_PER_UNIT[(match[2] ?? 'ms') as keyof typeof MS_PER_UNIT]
      return Number.isSafeInteger(ms) ? ms : undefined
    },
    optionalText(defaultValue),
  )
}

const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = { true: true, false: false, 1: true, 0: false, yes: true, no: false }

/** true/false, 1/0 or yes/no, in any case. */
export function bool(defaultValue?: boolean): EnvField<boolean> {
  return envField('one of true, false, 1, 0, yes, no', (text) => BOOLEAN_WORDS[text.toLowerCase()], optionalText(defaultValue))
}

export interface UrlOptions {
  /** Allowed schemes with their colon, e.g. `['redis:', 'rediss:']`; any when omitted. */
  protocols?: readonly string[]
  default?: string
}

/** An absolute URL, kept as the text given. */
export function url(options: UrlOptions = {}): EnvField<string> {
  const { protocols } = options
  const expected =
    protocols === undefined ? 'an absolute URL' : `a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`
  return envField(
    expected,
    (text) => {
      // `host:8123` parses as a URL with scheme "host:"; require the `scheme://` form.
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text) || !URL.canParse(text)) return undefined
      return protocols === undefined || protocols.includes(new URL(text).protocol) ? text : undefined
    },
    options.default,
  )
}

/** Kafka bootstrap brokers, `host:port,host:port`. */
export function brokerList(defaultValue?: string): EnvField<string[]> {
  return envField(
    'a comma-separated list of host:port',
    (text) => {
      const brokers = text.split(',').map((broker) => broker.trim())
      const valid = brokers.every((broker) => {
        const match = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(broker)
        return match !== null && integerIn(match[2] ?? '', 1, 65_535) !== undefined
      })
      return valid ? brokers : undefined
    },
    defaultValue,
  )
}

export const NODE_ENVS = ['development', 'production', 'test'] as const
export type NodeEnv = (typeof NODE_ENVS)[number]

/** development (the default), production or test. */
export function nodeEnv(): EnvField<NodeEnv> {
  return oneOf(NODE_ENVS, 'development')
}

/** The log levels of pino, which fastify logs with. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export function logLevel(defaultLevel: LogLevel = 'info'): EnvField<LogLevel> {
  return oneOf(LOG_LEVELS, defaultLevel)
}

/**
 * A variable in a format a domain package owns, e.g. `parsedWith(parseClickIdKeys)`: the
 * parser throws on bad text and its error message becomes the variable's message.
 */
export function parsedWith<T>(parse: (text: string) => T, defaultValue?: string): EnvField<T> {
  const field = z.string().transform((raw, ctx) => {
    try {
      return parse(raw)
    } catch (error) {
      ctx.issues.push({ code: 'custom', message: error instanceof Error ? error.message : String(error), input: raw })
      return z.NEVER
    }
  })
  return (defaultValue === undefined ? field : field.prefault(defaultValue)) as EnvField<T>
}

function oneOf<const V extends string>(values: readonly V[], fallback: V): EnvField<V> {
  return envField(
    `one of ${values.join(', ')}`,
    (text) => values.find((value) => value === text.toLowerCase()),
    fallback,
  )
}

function integerIn(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,16}$/.test(text)) return undefined
  const value = Number(text)
  return value >= min && value <= max ? value : undefined
}

function optionalText(value: number | string | boolean | undefined): string | undefined {
  return value === undefined ? undefined : String(value)
}
