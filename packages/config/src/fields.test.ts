import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { bool, brokerList, durationMs, logLevel, nodeEnv, parsedWith, port, positiveInt, url } from './fields.ts'
import { ConfigError, parseEnv } from './parse-env.ts'

/** Parses one variable `V` with `field`: its value, or the ConfigError message. */
function read<T>(field: z.ZodType<T, string | undefined>, value?: string): T | string {
  try {
    return parseEnv(z.object({ V: field }), { V: value }).V
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
}

describe('port', () => {
  it('reads a port, with its default when unset', () => {
    expect(read(port(8080))).toBe(8080)
    expect(read(port(8080), '9090')).toBe(9090)
    expect(read(port(), '0')).toBe(0)
    expect(read(port(), ' 65535 ')).toBe(65535)
  })

  it('rejects what is not a port', () => {
    for (const bad of ['65536', '-1', '80.5', 'http', '8080x', '1e3']) {
      expect(read(port(8080), bad)).toContain(`V: must be a port number 0–65535 (got "${bad}")`)
    }
    expect(read(port())).toContain('V: is required but not set')
  })
})

describe('positiveInt', () => {
  it('reads positive integers only', () => {
    expect(read(positiveInt(3))).toBe(3)
    expect(read(positiveInt(), '12')).toBe(12)
    for (const bad of ['0', '-4', '2.5', 'many', '99999999999999999']) {
      expect(read(positiveInt(), bad)).toContain('V: must be a positive integer')
    }
  })
})

describe('durationMs', () => {
  it('reads plain milliseconds and unit suffixes', () => {
    expect(read(durationMs(60_000))).toBe(60_000)
    expect(read(durationMs('30s'))).toBe(30_000)
    expect(read(durationMs(), '250')).toBe(250)
    expect(read(durationMs(), '250ms')).toBe(250)
    expect(read(durationMs(), '5m')).toBe(300_000)
    expect(read(durationMs(), '2h')).toBe(7_200_000)
    expect(read(durationMs(), '1d')).toBe(86_400_000)
  })

  it('rejects other text', () => {
    for (const bad of ['-5s', '1.5s', '5 minutes', 's', '10w']) {
      expect(read(durationMs(), bad)).toContain('V: must be a duration')
    }
  })
})

describe('bool', () => {
  it('reads true/false, 1/0 and yes/no in any case', () => {
    expect(read(bool(true))).toBe(true)
    expect(read(bool(false))).toBe(false)
    for (const yes of ['true', 'TRUE', '1', 'yes', 'Yes']) expect(read(bool(false), yes)).toBe(true)
    for (const no of ['false', 'False', '0', 'no', 'NO']) expect(read(bool(true), no)).toBe(false)
  })

  it('rejects anything else', () => {
    for (const bad of ['y', 'on', '2', 'truthy']) {
      expect(read(bool(false), bad)).toContain(`V: must be one of true, false, 1, 0, yes, no (got "${bad}")`)
    }
  })
})

describe('url', () => {
  it('reads absolute URLs, optionally only some schemes', () => {
    expect(read(url(), 'http://localhost:8123')).toBe('http://localhost:8123')
    expect(read(url({ protocols: ['redis:', 'rediss:'] }), 'rediss://cache:6380/0')).toBe('rediss://cache:6380/0')
    expect(read(url({ default: 'redis://127.0.0.1:6379' }))).toBe('redis://127.0.0.1:6379')
    expect(read(url().optional())).toBeUndefined()
  })

  it('rejects relative URLs and other schemes', () => {
    expect(read(url(), 'localhost:8123/x')).toContain('V: must be an absolute URL')
    expect(read(url(), '/path')).toContain('V: must be an absolute URL')
    expect(read(url({ protocols: ['redis:'] }), 'http://cache:6379')).toContain(
      'V: must be a URL starting with redis:// (got "http://cache:6379")',
    )
  })
})

describe('brokerList', () => {
  it('splits host:port pairs', () => {
    expect(read(brokerList('localhost:9092'))).toEqual(['localhost:9092'])
    expect(read(brokerList(), 'k1:9092, k2.internal:19092,[::1]:9093')).toEqual([
      'k1:9092',
      'k2.internal:19092',
      '[::1]:9093',
    ])
  })

  it('rejects entries without a valid port', () => {
    for (const bad of ['localhost', 'k1:9092,', 'k1:0', 'k1:70000', 'k1:9092,k2', 'http://k1:9092']) {
      expect(read(brokerList(), bad)).toContain('V: must be a comma-separated list of host:port')
    }
  })
})

describe('nodeEnv and logLevel', () => {
  it('default to development and info', () => {
    expect(read(nodeEnv())).toBe('development')
    expect(read(logLevel())).toBe('info')
    expect(read(logLevel('warn'))).toBe('warn')
    expect(read(nodeEnv(), 'production')).toBe('production')
    expect(read(logLevel(), 'DEBUG')).toBe('debug')
  })

  it('reject values outside their set', () => {
    expect(read(nodeEnv(), 'prod')).toContain('V: must be one of development, production, test (got "prod")')
    expect(read(logLevel(), 'verbose')).toContain('V: must be one of fatal, error, warn, info, debug, trace, silent')
  })
})

describe('parsedWith', () => {
  const parsePair = (text: string): [string, string] => {
    const [left, right, ...rest] = text.split('/')
    if (left === undefined || right === undefined || rest.length > 0) throw new Error('expected "<a>/<b>"')
    return [left, right]
  }

  it('uses a domain parser and reports what it throws', () => {
    expect(read(parsedWith(parsePair), 'a/b')).toEqual(['a', 'b'])
    expect(read(parsedWith(parsePair, 'x/y'))).toEqual(['x', 'y'])
    expect(read(parsedWith(parsePair), 'a')).toContain('V: expected "<a>/<b>" (got "a")')
  })
})
