import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { repoRoot } from './paths.ts'

export { coresByThread, cpuSeconds, cpuSecondsByThread } from './proc-cpu.ts'

/** One figure of a benchmark, next to its reference measured in the same run. */
export interface BenchFigure {
  measure: string
  value: number
  unit: string
  /** What it is compared with, measured side by side. */
  reference?: { label: string; value: number }
  /** `value / reference` should be at least this (or, with `atMost`, at most). */
  goal?: { atLeast?: number; atMost?: number; of: 'ratio' | 'value' }
  detail?: string
}

export const benchResultsDir = path.join(repoRoot, 'bench-results')

/** Each benchmark writes `bench-results/<name>.json`; `pnpm bench` gathers them into one table. */
export async function writeBenchResult(name: string, figures: BenchFigure[]): Promise<void> {
  await mkdir(benchResultsDir, { recursive: true })
  await writeFile(path.join(benchResultsDir, `${name}.json`), JSON.stringify({ name, at: new Date().toISOString(), figures }, null, 2))
}

export async function readBenchResult(name: string): Promise<{ name: string; at: string; figures: BenchFigure[] } | undefined> {
  try {
    return JSON.parse(await readFile(path.join(benchResultsDir, `${name}.json`), 'utf8')) as { name: string; at: string; figures: BenchFigure[] }
  } catch {
    return undefined
  }
}

/** The median of some figures and their range, e.g. "0.52 (0.41–0.63)". */
export function medianWithRange(values: readonly number[], format: (n: number) => string = (n) => n.toFixed(2)): { median: number; text: string } {
  const sorted = [...values].sort((a, b) => a - b)
  const median = sorted.length === 0 ? NaN : sorted[Math.floor((sorted.length - 1) / 2)]!
  return { median, text: `${format(median)} (${format(sorted[0] ?? NaN)}–${format(sorted[sorted.length - 1] ?? NaN)})` }
}

/** `NAME=value,…` (a benchmark's settings for an A/B) as environment variables; a value may hold `=`. */
export function envAssignments(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(',')
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1).trim()]),
  )
}

/** Every sample of metric `name` in a Prometheus text page: its label text (without braces) and value. */
export function metricSamples(text: string, name: string): { labels: string; value: number }[] {
  return [...text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].map(([, labels, value]) => ({ labels: labels ?? '', value: Number(value) }))
}

/** The sum of metric `name`'s samples whose label text contains `labels` (all of them when empty). */
export function metricSum(text: string, name: string, labels = ''): number {
  return metricSamples(text, name)
    .filter((s) => s.labels.includes(labels))
    .reduce((n, s) => n + s.value, 0)
}

/** The sink's inserts so far, all tables summed (count and rows), from its /metrics at `url`. */
export async function sinkInserts(url: string): Promise<{ inserts: number; rows: number }> {
  const text = await (await fetch(`${url}/metrics`)).text()
  return { inserts: metricSum(text, 'clickjoin_sink_insert_rows_count'), rows: metricSum(text, 'clickjoin_sink_insert_rows_sum') }
}
