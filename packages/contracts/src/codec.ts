import type { Static } from '@sinclair/typebox'
import type { EventContract, EventSchema } from './contract.ts'

export type DecodedEvent<T> = { ok: true; value: T } | { ok: false; reason: string }

/** A producer tried to publish a value its contract does not allow: a bug, not bad input. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError'
}

/** The one wire encoding: JSON of an object that carries its schema version in `v`. */
export function encodeEvent<S extends EventSchema>(contract: EventContract<S>, value: Static<S>): Buffer {
  return Buffer.from(encodeEventText(contract, value), 'utf8')
}

/** The same encoding as text, for callers that store or send it as a string (no Buffer round trip). */
export function encodeEventText<S extends EventSchema>(contract: EventContract<S>, value: Static<S>): string {
  assertEvent(contract, value)
  return JSON.stringify(value)
}

/** Throws InvalidEventError unless `value` is what the contract allows (what encoders check first). */
export function assertEvent<S extends EventSchema>(contract: EventContract<S>, value: Static<S>): void {
  if (!contract.validator.Check(value)) {
    throw new InvalidEventError(`${contract.name}: ${firstSchemaError(contract, value)}`)
  }
}

/**
 * Reads a message value against its contract. Never throws: anything that is not a valid
 * event comes back as `{ ok: false, reason }`, for the dead-letter topic.
 */
export function decodeEvent<S extends EventSchema>(
  contract: EventContract<S>,
  raw: Uint8Array | string | null | undefined,
): DecodedEvent<Static<S>> {
  try {
    if (raw === null || raw === undefined) return { ok: false, reason: 'empty message (no value)' }
    const text = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8')
    let value: unknown
    try {
      value = JSON.parse(text)
    } catch (error) {
      return { ok: false, reason: `not valid JSON: ${(error as Error).message}` }
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return { ok: false, reason: 'not a JSON object' }
    }
    if (!('v' in value)) return { ok: false, reason: 'missing schema version field v' }
    if (value.v !== contract.version) {
      return {
        ok: false,
        reason: `unsupported schema version v=${JSON.stringify(value.v)} for ${contract.name} (expected v=${contract.version})`,
      }
    }
    if (!contract.validator.Check(value)) return { ok: false, reason: firstSchemaError(contract, value) }
    return { ok: true, value }
  } catch (error) {
    return { ok: false, reason: `undecodable: ${String(error)}` }
  }
}

function firstSchemaError(contract: EventContract, value: unknown): string {
  const error = contract.validator.Errors(value).First()
  if (error === undefined) return 'does not match the schema'
  const field = error.path === '' ? '(message)' : error.path.slice(1).replaceAll('/', '.')
  const hint = typeof error.schema.description === 'string' ? ` (${error.schema.description})` : ''
  return `${field}: ${error.message}${hint}`
}
