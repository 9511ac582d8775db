import { describe, expect, it } from 'vitest'
import { ConfigError } from '@clickjoin/config'
import { EXIT_CONFIG, runService, type RunnableService } from './run-service.ts'

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined }

describe('runService', () => {
  it('a configuration error exits 78 without creating the service', async () => {
    const codes: number[] = []
    let created = false
    await runService(
      {
        name: 'test',
        loadConfig: () => {
          throw new ConfigError([{ variable: 'KAFKA_TOPIC_PREFIX', message: 'may use only A-Z a-z 0-9 . _ -' }])
        },
        create: () => {
          created = true
          return { log: quiet, start: async () => undefined, stop: async () => undefined }
        },
      },
      { env: {}, exit: (code) => codes.push(code) },
    )
    expect(codes).toEqual([EXIT_CONFIG])
    expect(created).toBe(false)
  })

  it('a failed start stops the service and exits 1', async () => {
    const codes: number[] = []
    const events: string[] = []
    const service: RunnableService = {
      log: quiet,
      start: async () => {
        events.push('start')
        throw new Error('Kafka unreachable')
      },
      stop: async () => void events.push('stop'),
    }
    await runService({ name: 'test', loadConfig: () => ({}), create: () => service }, { env: {}, exit: (code) => codes.push(code) })
    expect(events).toEqual(['start', 'stop'])
    expect(codes).toEqual([1])
  })
})
