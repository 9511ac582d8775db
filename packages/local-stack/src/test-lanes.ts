import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from './paths.ts'
import { setup, teardown } from './vitest-global-setup.ts'

/**
 * `npm test`'s integration run, in two lanes that share one Kafka, Redis and Redis Cluster: two
 * vitest processes at once, each running its files one after the other. Most integration time
 * is waiting (sessions expiring, processes restarting, brokers electing), so two lanes on two
 * cores take about half the time of one. The kill -9 suites share a lane so that two of them never
 * run at once (with one long suite besides, to even the lanes); the other lane has the rest. Tests isolate themselves by unique
 * topics, key prefixes and databases, so they do not see each other.
 *
 * Lane 1 prints as it goes; lane 2's output follows when it is done (its log is
 * .cache/test-results/integration-2.log). Each lane writes its own JSON report.
 */
const laneOne = [
  'services/attributor/test/crash.int.test.ts',
  'services/attributor/test/rebalance.int.test.ts',
  'services/attributor/test/takeover.int.test.ts',
  'services/ingest/test/kafka-outage.int.test.ts',
  // Not a kill -9 suite: a long one (~90 s), which evens the lanes (743 s and 962 s without it).
  'services/attributor/test/cold-tier.int.test.ts',
]

const resultsDir = path.join(repoRoot, '.cache', 'test-results')

function vitest(args: string[], output: 'inherit' | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('pnpm', ['exec', 'vitest', 'run', '--project', 'integration', ...args], {
      cwd: repoRoot,
      stdio: output === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    })
    if (output !== 'inherit') {
      const log = createWriteStream(output)
      child.stdout!.pipe(log)
      child.stderr!.pipe(log)
    }
    children.push(child)
    child.on('error', reject)
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

/** The failed tests of a vitest JSON report, each with the start of its failure message. */
async function failureSummary(reportFile: string, lane: string): Promise<string> {
  let report: { testResults?: { name: string; message?: string; assertionResults?: { status: string; fullName: string; failureMessages?: string[] }[] }[] }
  try {
    report = JSON.parse(await readFile(reportFile, 'utf8'))
  } catch (err) {
    return `[clickjoin] ${lane}: no JSON report (${err instanceof Error ? err.message : String(err)})`
  }
  const lines: string[] = []
  for (const file of report.testResults ?? []) {
    const relative = path.relative(repoRoot, file.name)
    if (file.message) lines.push(`  ${relative}: ${firstLines(file.message)}`)
    for (const test of file.assertionResults ?? []) {
      if (test.status === 'failed') lines.push(`  ${relative} > ${test.fullName}\n    ${firstLines(test.failureMessages?.join('\n') ?? '')}`)
    }
  }
  return `[clickjoin] ${lane}: ${lines.length === 0 ? 'no failed test' : `failed:\n${lines.join('\n')}`}`
}

function firstLines(text: string, count = 12): string {
  const lines = text.split('\n').filter((line) => !/^\s*at .*(node_modules|node:internal|<anonymous>)/.test(line))
  return lines.slice(0, count).join('\n    ')
}

const children: ReturnType<typeof spawn>[] = []
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal)
  })
}

await mkdir(resultsDir, { recursive: true })
await setup()
let failed = false
try {
  const report = (name: string) => ['--reporter=default', '--reporter=json', `--outputFile.json=${path.join(resultsDir, `${name}.json`)}`]
  const laneTwoLog = path.join(resultsDir, 'integration-2.log')
  console.log(`[clickjoin] integration tests in two lanes; lane 2 (everything but lane 1's ${laneOne.length} suites) prints when done`)
  const [one, two] = await Promise.all([
    vitest([...laneOne, ...report('integration')], 'inherit'),
    vitest([...laneOne.flatMap((file) => ['--exclude', `**/${file}`]), ...report('integration-2')], laneTwoLog),
  ])
  console.log(`\n[clickjoin] lane 2:\n`)
  process.stdout.write(await readFile(laneTwoLog, 'utf8'))
  failed = one !== 0 || two !== 0
  if (failed) {
    // Last, so that the tail of a long CI log (all that some readers keep) names what failed.
    for (const name of ['integration', 'integration-2']) console.error(await failureSummary(path.join(resultsDir, `${name}.json`), name))
    console.error(`[clickjoin] integration tests failed (lane 1 exit ${one}, lane 2 exit ${two})`)
  }
} finally {
  await teardown()
}
process.exit(failed ? 1 : 0)
