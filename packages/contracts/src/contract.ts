import type { Static, TLiteral, TObject, TProperties } from '@sinclair/typebox'
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler'

/** Every event is a JSON object whose field `v` is its schema version. */
export type EventSchema = TObject<TProperties & { v: TLiteral<number> }>

/** A versioned event schema with its validator, compiled once when the module loads. */
export interface EventContract<S extends EventSchema = EventSchema> {
  readonly name: string
  readonly version: number
  readonly schema: S
  readonly validator: TypeCheck<S>
}

export type EventOf<C extends EventContract> = C extends EventContract<infer S> ? Static<S> : never

export function defineEventContract<S extends EventSchema>(name: string, schema: S): EventContract<S> {
  return { name, version: schema.properties.v.const, schema, validator: TypeCompiler.Compile(schema) }
}
