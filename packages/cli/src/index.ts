export { adminApi, runSql, CliError, type Endpoints } from './admin-client.ts'
