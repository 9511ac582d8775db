import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { bool, brokerList, port, url } from './fields.ts'
import { ConfigError, parseEnv } from './parse-env.ts'

// Shaped like a service's env schema.
const Env = z.object({
  /** HTTP port. */
  PORT: port(8080),
  /** Kafka bootstrap servers. */
  KAFKA_BROKERS: brokerList('localhost:9092'),
  /** Redis connection. */
  REDIS_URL: url({ protocols: ['redis:', 'rediss:'], default: 'redis://127.0.0.1:6379' }),
  /** Bearer token of the admin API. */
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters'),
  /** Whether the pixel may be served. */
  PIXEL_ENABLED: bool(true),
})

function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    parseEnv(Env, env)
  } catch (error) {
    if (error instanceof ConfigError) return error
    throw error
  }
  throw new Error('expected a ConfigError')
}

describe('parseEnv', () => {
  it('applies defaults and returns typed values', () => {
    const config = parseEnv(Env, { ADMIN_TOKEN: 'a-long-admin-token-123' })
    expect(config).toEqual({
      PORT: 8080,
      KAFKA_BROKERS: ['localhost:9092'],
      REDIS_URL: 'redis://127.0.0.1:6379',
      ADMIN_TOKEN: 'a-long-admin-token-123',
      PIXEL_ENABLED: true,
    })
  })

  it('treats an empty variable as unset', () => {
    const config = parseEnv(Env, { ADMIN_TOKEN: 'a-long-admin-token-123', PORT: '', PIXEL_ENABLED: '' })
    expect(config.PORT).toBe(8080)
    expect(config.PIXEL_ENABLED).toBe(true)
  })

  it('ignores variables the schema does not name', () => {
    const config = parseEnv(Env, { ADMIN_TOKEN: 'a-long-admin-token-123', HOME: '/root' })
    expect(config).not.toHaveProperty('HOME')
  })

  it('reports every bad variable at once, each by name with its value', () => {
    const error = configError({ PORT: 'http', KAFKA_BROKERS: 'kafka', PIXEL_ENABLED: 'maybe' })
    expect(error.problems.map((problem) => problem.variable).sort()).toEqual([
      'ADMIN_TOKEN',
      'KAFKA_BROKERS',
      'PIXEL_ENABLED',
      'PORT',
    ])
    expect(error.message).toContain('PORT: must be a port number 0–65535 (got "http")')
    expect(error.message).toContain('KAFKA_BROKERS: must be a comma-separated list of host:port (got "kafka")')
    expect(error.message).toContain('PIXEL_ENABLED: must be one of true, false, 1, 0, yes, no (got "maybe")')
    expect(error.message).toContain('ADMIN_TOKEN: is required but not set')
  })

  it('hides the values of secrets, tokens, keys and passwords', () => {
    const Secrets = z.object({
      ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters'),
      PARTNER_SECRET: z.string().min(16, 'must be at least 16 characters'),
      CLICK_ID_KEYS: z.string().regex(/^\d+:/, 'must be <keyId>:<secret>'),
      DB_PASSWORD: z.string().min(16, 'must be at least 16 characters'),
    })
    let message = ''
    try {
      parseEnv(Secrets, { ADMIN_TOKEN: 'tok-1', PARTNER_SECRET: 'sec-2', CLICK_ID_KEYS: 'key-3', DB_PASSWORD: 'pw-4' })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('ADMIN_TOKEN: must be at least 16 characters (got "***")')
    expect(message).toContain('PARTNER_SECRET: must be at least 16 characters (got "***")')
    expect(message).toContain('CLICK_ID_KEYS: must be <keyId>:<secret> (got "***")')
    expect(message).toContain('DB_PASSWORD: must be at least 16 characters (got "***")')
    for (const secret of ['tok-1', 'sec-2', 'key-3', 'pw-4']) expect(message).not.toContain(secret)
  })

  it('hides a password inside a URL', () => {
    const error = configError({ ADMIN_TOKEN: 'a-long-admin-token-123', REDIS_URL: 'http://user:hunter2@cache:6379' })
    expect(error.message).toContain('REDIS_URL: must be a URL starting with redis:// or rediss:// (got "http://user:***@cache:6379")')
    expect(error.message).not.toContain('hunter2')
  })

  it('reads process.env by default', () => {
    const Probe = z.object({ CLICKJOIN_CONFIG_TEST_PORT: port(1) })
    expect(parseEnv(Probe)).toEqual({ CLICKJOIN_CONFIG_TEST_PORT: 1 })
  })
})
