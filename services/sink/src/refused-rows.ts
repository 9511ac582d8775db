/**
 * ClickHouse errors that refuse a row for what it holds (a CHECK constraint, a value its column
 * cannot take): retrying the same row can never succeed, so it is dead-lettered instead of
 * stalling its partition (SPEC §6). Anything else (the server down, a table missing, a
 * timeout) is an outage: the insert is retried until it succeeds.
 */
const CONTENT_REFUSALS =
  /^(VIOLATED_CONSTRAINT|CANNOT_PARSE_\w+|INCORRECT_DATA|TYPE_MISMATCH|VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE|CANNOT_CONVERT_TYPE|TOO_LARGE_STRING_SIZE|DECIMAL_OVERFLOW|CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN|ARGUMENT_OUT_OF_BOUND|ILLEGAL_TYPE_OF_ARGUMENT|CANNOT_READ_ALL_DATA)$/

export function isRefusedForContent(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type
  return typeof type === 'string' && CONTENT_REFUSALS.test(type)
}

export interface RefusedRow<R> {
  row: R
  reason: string
}

/**
 * Inserts `rows`; when ClickHouse refuses some for their content, halves the part until each
 * refused row stands alone, stores every other row, and returns the refused ones with
 * ClickHouse's reason. Each part has a token derived from `token` and its position, so a retry
 * of the same block (after an outage error thrown from here) stores nothing twice.
 */
export async function insertSettingAsideRefused<R>(
  rows: readonly R[],
  token: string,
  insert: (part: readonly R[], token: string) => Promise<void>,
): Promise<RefusedRow<R>[]> {
  async function attempt(from: number, to: number): Promise<RefusedRow<R>[]> {
    const part = rows.slice(from, to)
    try {
      await insert(part, from === 0 && to === rows.length ? token : `${token}:${from}-${to}`)
      return []
    } catch (error) {
      if (!isRefusedForContent(error)) throw error
      if (to - from === 1) return [{ row: rows[from]!, reason: error instanceof Error ? error.message : String(error) }]
      const middle = from + Math.ceil((to - from) / 2)
      return [...(await attempt(from, middle)), ...(await attempt(middle, to))]
    }
  }
  return rows.length === 0 ? [] : attempt(0, rows.length)
}
