import { readdir, readFile } from 'node:fs/promises'

/** utime + stime of a /proc/…/stat line, in seconds (USER_HZ 100). */
function statSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** CPU seconds a process used so far (all its threads), NaN where unreadable. */
export async function cpuSeconds(pid: number): Promise<number> {
  try {
    return statSeconds(await readFile(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return NaN
  }
}

/**
 * CPU seconds per thread of a process, grouped: `main` (the thread whose id is the PID: Node's
 * JavaScript), the others by name (`comm`, digits stripped): with embedded chDB, `ThreadPool`
 * and `MergeMutate` are the engine's pools, `node` the unnamed threads (libuv's pool, where chDB
 * runs each query, and V8's helpers). Threads that ended meanwhile are missing.
 */
export async function cpuSecondsByThread(pid: number): Promise<Map<string, number>> {
  const byName = new Map<string, number>()
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[])
  await Promise.all(
    tids.map(async (tid) => {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => undefined)
      if (stat === undefined) return
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[\d:/-]+$/, '')
      byName.set(name, (byName.get(name) ?? 0) + statSeconds(stat))
    }),
  )
  return byName
}

/** Cores per thread group between two samples over `seconds`, largest first, tiny ones left out. */
export function coresByThread(before: Map<string, number>, after: Map<string, number>, seconds: number): [string, number][] {
  return [...after]
    .map(([name, s]): [string, number] => [name, (s - (before.get(name) ?? 0)) / seconds])
    .filter(([, cores]) => cores >= 0.005)
    .sort((a, b) => b[1] - a[1])
}
