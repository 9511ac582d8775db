export interface BackoffPolicy {
  /** Delay before the second attempt (before jitter). */
  firstDelayMs: number
  /** No single wait is longer than this. */
  maxDelayMs: number
  /** How long after the first attempt a delivery keeps being retried (DISPATCH_RETRY_HOURS). */
  retryForMs: number
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  firstDelayMs: 10_000,
  maxDelayMs: 6 * 3_600_000,
  retryForMs: 72 * 3_600_000,
}

/**
 * Exponential backoff with "full jitter" between half and the whole of the step
 * (firstDelay · 2^(attempt−1), capped): retries of many deliveries that failed together
 * spread out instead of arriving at the receiver in one wave.
 * `attempt` is the number of attempts made so far (≥ 1); `random` is in [0, 1).
 */
export function retryDelayMs(attempt: number, random: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 40)
  const step = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** exponent)
  return Math.round(step / 2 + (step / 2) * random)
}

/**
 * What happens after a failed attempt: another one at `nextAttemptAt` (the last one exactly
 * at the end of the retry period that began with the first attempt), or none once that
 * period is over: failed.
 */
export function afterFailure(
  options: { attempt: number; firstAttemptAt: number; now: number; random: number },
  policy: BackoffPolicy,
): { state: 'retrying'; nextAttemptAt: number } | { state: 'failed' } {
  const retryUntil = options.firstAttemptAt + policy.retryForMs
  if (options.now >= retryUntil) return { state: 'failed' }
  const nextAttemptAt = options.now + retryDelayMs(options.attempt, options.random, policy)
  return { state: 'retrying', nextAttemptAt: Math.min(nextAttemptAt, retryUntil) }
}
