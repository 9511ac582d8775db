/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. BENCH_CPU_PROFILE_DIR with redirect.ts):
 * self time by package and by function, as shares of all samples.
 *
 *   node --import tsx services/ingest/bench/profile-summary.ts <file.cpuprofile> [top=25] [match]
 *
 * With `match` (a regular expression over "function package"), also the inclusive time (self
 * plus callees) of the matching functions, as shares of the busy (not idle) samples: where a
 * path's time goes, e.g. `'sendNextBatch|send packages/kafka|#send |writeBuffer'`.
 */
import { readFile } from 'node:fs/promises'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
  parent?: number
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const file = process.argv[2]
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]')
const top = Number(process.argv[3] ?? 25)
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const selfUs = new Map<number, number>()
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...selfUs.values()].reduce((a, b) => a + b, 0)

function packageOf(url: string, name: string): string {
  if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') return name
  if (!url) return '(native / V8)'
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pnpm) return pnpm[1]!
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1]!
  if (url.startsWith('node:')) return 'node core'
  const ours = /\/(services\/[^/]+|packages\/[^/]+)\//.exec(url)
  return ours ? ours[1]! : url
}

const byPackage = new Map<string, number>()
const byFunction = new Map<string, number>()
for (const [id, us] of selfUs) {
  const node = byId.get(id)!
  const { functionName, url, lineNumber } = node.callFrame
  const pkg = packageOf(url, functionName)
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us)
  const fn = `${functionName || '(anonymous)'} ${pkg}${url ? `:${lineNumber + 1}` : ''}`
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us)
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`
console.log(`${(total / 1e6).toFixed(1)} s sampled`)
console.log('\nself time by package')
for (const [pkg, us] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${pkg}`)
console.log('\nself time by function')
for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(us)}  ${fn}`)

const match = process.argv[4] ? new RegExp(process.argv[4]) : undefined
if (match) {
  for (const node of profile.nodes) for (const child of node.children ?? []) byId.get(child)!.parent = node.id
  const label = (node: ProfileNode) => {
    const { functionName, url, lineNumber } = node.callFrame
    const pkg = packageOf(url, functionName)
    return `${functionName || '(anonymous)'} ${pkg}${url ? `:${lineNumber + 1}` : ''}`
  }
  const inclusive = new Map<string, number>()
  let busy = 0
  for (const [id, us] of selfUs) {
    const leaf = byId.get(id)!
    if (leaf.callFrame.functionName === '(idle)') continue
    busy += us
    const seen = new Set<string>()
    for (let node: ProfileNode | undefined = leaf; node; node = node.parent === undefined ? undefined : byId.get(node.parent)) {
      const name = label(node)
      if (seen.has(name) || !match.test(name)) continue
      seen.add(name)
      inclusive.set(name, (inclusive.get(name) ?? 0) + us)
    }
  }
  console.log(`\ninclusive time of /${match.source}/, as shares of ${(busy / 1e6).toFixed(2)} s busy`)
  for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`)
  }
}
