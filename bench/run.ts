/**
 * `pnpm bench`: every benchmark in turn (their progress and own figures stream through), then
 * one table of what each measured against its reference in the same run, and
 * bench-results/summary.json. BENCH_ONLY=ingest,sink runs a subset.
 */
import { spawn } from 'node:child_process'
import { cpus, totalmem } from 'node:os'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from '@clickjoin/local-stack'
import { benchResultsDir, readBenchResult, type BenchFigure } from '@clickjoin/local-stack/bench'

const benches = [
  { name: 'ingest', script: 'services/ingest/bench/redirect.ts' },
  { name: 'attributor', script: 'services/attributor/bench/throughput.ts' },
  { name: 'attributor-memory', script: 'services/attributor/bench/memory.ts' },
  { name: 'sink', script: 'services/sink/bench/throughput.ts' },
  { name: 'report', script: 'services/sink/bench/report.ts' },
  { name: 'dispatcher', script: 'services/dispatcher/bench/throughput.ts' },
  { name: 'pipeline', script: 'bench/pipeline.ts' },
]
const only = process.env['BENCH_ONLY']?.split(',')
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`

function run(script: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: 'inherit' })
    child.once('exit', (code) => resolve(code ?? 1))
  })
}

function verdict(f: BenchFigure): string {
  if (!f.goal) return ''
  const x = f.goal.of === 'ratio' && f.reference ? f.value / f.reference.value : f.value
  const ok = (f.goal.atLeast === undefined || x >= f.goal.atLeast) && (f.goal.atMost === undefined || x <= f.goal.atMost)
  const goal = f.goal.atLeast !== undefined ? `≥ ${f.goal.atLeast}` : `≤ ${f.goal.atMost}`
  return `${goal}${f.goal.of === 'ratio' ? '×' : ''}: ${ok ? 'met' : 'missed'}`
}

const failed: string[] = []
for (const bench of benches.filter((b) => !only || only.includes(b.name))) {
  console.log(`\n=== ${bench.name}: node --import tsx ${bench.script}`)
  if ((await run(bench.script)) !== 0) failed.push(bench.name)
}

const rows: string[][] = []
const summary: Record<string, unknown> = { machine, at: new Date().toISOString(), results: {} }
for (const bench of benches) {
  const result = await readBenchResult(bench.name)
  if (!result) continue
  ;(summary['results'] as Record<string, unknown>)[bench.name] = result
  for (const f of result.figures) {
    const ratio = f.reference ? (f.value / f.reference.value).toFixed(2) : ''
    rows.push([
      f.measure,
      `${f.value.toLocaleString('en-US')} ${f.unit}`,
      f.reference ? `${f.reference.value.toLocaleString('en-US')} (${f.reference.label})` : '',
      ratio,
      verdict(f),
      result.at.slice(0, 19),
    ])
  }
}
const header = ['measure', 'value', 'reference, same run', 'ratio', 'goal', 'measured at (UTC)']
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
console.log(`\nclickjoin benchmarks on ${machine}\n`)
console.log(line(header))
console.log(line(widths.map((w) => '-'.repeat(w))))
for (const r of rows) console.log(line(r))
await writeFile(path.join(benchResultsDir, 'summary.json'), JSON.stringify(summary, null, 2))
console.log(`\nwritten: ${path.relative(repoRoot, path.join(benchResultsDir, 'summary.json'))}`)
if (failed.length > 0) {
  console.error(`benchmarks that failed: ${failed.join(', ')}`)
  process.exit(1)
}
