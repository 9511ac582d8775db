import type { z } from 'zod'

export interface ConfigProblem {
  /** The environment variable, e.g. `KAFKA_BROKERS`. */
  variable: string
  message: string
}

/** The environment cannot start the service; the message lists every bad variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly problems: readonly ConfigProblem[]

  constructor(problems: readonly ConfigProblem[]) {
    super(
      `invalid configuration:\n${problems.map((problem) => `  ${problem.variable}: ${problem.message}`).join('\n')}`,
    )
    this.problems = problems
  }
}

const SENSITIVE_NAME = /SECRET|TOKEN|KEY|PASSWORD|USERS/i
const MAX_SHOWN_LENGTH = 120
// `scheme://user:password@host…`: the password part.
const URL_PASSWORD = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:/@]*:)[^@/]*@/

/**
 * Validates the environment once, at start, against a service's schema. An empty variable
 * counts as unset (`FOO=` in a compose file or shell means "not configured"), so its
 * default applies.
 */
export function parseEnv<S extends z.ZodObject>(
  schema: S,
  env: Readonly<Record<string, string | undefined>> = process.env,
): z.output<S> {
  const input: Record<string, string> = {}
  for (const [name, value] of Object.entries(env)) if (value !== undefined && value !== '') input[name] = value

  const result = schema.safeParse(input)
  if (result.success) return result.data
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const variable = issue.path.length > 0 ? issue.path.map(String).join('.') : '(environment)'
      const name = String(issue.path[0] ?? '')
      const value = input[name]
      if (value === undefined) return { variable, message: 'is required but not set' }
      return { variable, message: `${issue.message} (got ${shownValue(name, value)})` }
    }),
  )
}

/** The value as it may appear in a log: secrets hidden, URL passwords hidden, long values cut. */
function shownValue(name: string, value: string): string {
  if (SENSITIVE_NAME.test(name)) return '"***"'
  let shown = value.replace(URL_PASSWORD, '$1***@')
  if (shown.length > MAX_SHOWN_LENGTH) shown = `${shown.slice(0, MAX_SHOWN_LENGTH)}…`
  return JSON.stringify(shown)
}
