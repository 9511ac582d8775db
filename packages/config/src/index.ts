export {
  bool,
  brokerList,
  durationMs,
  logLevel,
  LOG_LEVELS,
  nodeEnv,
  NODE_ENVS,
  parsedWith,
  port,
  positiveInt,
  url,
  type EnvField,
  type LogLevel,
  type NodeEnv,
  type UrlOptions,
} from './fields.ts'
export { ConfigError, parseEnv, type ConfigProblem } from './parse-env.ts'
