/**
 * Whether a process with this PID exists. EPERM means it exists but belongs to someone else:
 * alive too (a PID file naming a process of another user must not be taken over).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
