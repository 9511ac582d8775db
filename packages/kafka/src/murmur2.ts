/**
 * Kafka's murmur2 (the Java client's `Utils.murmur2`, which kafkajs and @platformatic/kafka port
 * too) in 32-bit integer arithmetic. @platformatic/kafka's port computes in BigInt, which cost
 * ingest and the attributor 0.8-1.2 µs and ~2 KB of garbage per message (BigInts that grow by
 * 32 bits a round; heap sampling of the attributor, docs/benchmarks.md "Attributor"); kafkajs'
 * goes through a Long per step.
 */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995
  const length = data.length
  let h = 0x9747b28c ^ length
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  // The Java switch's fall-through: the last one to three bytes, then one more multiply.
  const rest = length & 3
  if (rest > 0) {
    if (rest === 3) h ^= data[whole + 2]! << 16
    if (rest >= 2) h ^= data[whole + 1]! << 8
    h ^= data[whole]!
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/**
 * The Java client's default partitioner for keyed messages, `toPositive(murmur2(key))` (the
 * producer takes it modulo the partition count): the partition kafkajs picks too. For
 * @platformatic/kafka's `partitioner` option; an unkeyed message goes to partition 0.
 */
export function javaPartitioner(_message: unknown, key: unknown): number {
  return Buffer.isBuffer(key) ? murmur2(key) & 0x7fffffff : 0
}

/** The partition of `partitions` a message keyed `key` goes to, as every client here picks it. */
export function partitionOfKey(key: string, partitions: number): number {
  return javaPartitioner(undefined, Buffer.from(key)) % partitions
}
