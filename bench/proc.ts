// Processes under test, from Linux's /proc: their CPU time, their children, and stopping a
// whole tree by PID. nginx and Varnish answer from child processes; a master stopped with
// SIGKILL leaves its children to init, still listening, so they are recorded first and
// stopped by their own PIDs.
import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { TrackedProcess } from '../test/support/processes.js'

const TICKS_PER_S = 100 // Linux USER_HZ (getconf CLK_TCK)

/** The fields of /proc/PID/stat after the command name (which may itself hold spaces). */
function statFields (pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch { return undefined }
}

/** The direct children of `pid`, listed per thread by the kernel. */
function children (pid: number): number[] {
  let tasks: string[]
  try { tasks = readdirSync(`/proc/${pid}/task`) } catch { return [] }
  return tasks.flatMap(t => {
    try {
      return readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(c => c !== '').map(Number)
    } catch { return [] }
  })
}

/** CPU seconds (user + system) used so far by `pid` and its live descendants. */
export function cpuSeconds (pid: number | undefined): number {
  if (pid === undefined) return 0
  const fields = statFields(pid)
  if (fields === undefined) return 0
  // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
  const own = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S
  return own + children(pid).reduce((sum, c) => sum + cpuSeconds(c), 0)
}

/** A process identified by PID and start time, so that a reused PID is never signalled. */
export interface ProcessId { readonly pid: number, readonly start: string }

function startTime (pid: number): string | undefined {
  return statFields(pid)?.[19] // starttime: field 22 of stat
}

/** Every live descendant of `pid`. */
export function descendants (pid: number): ProcessId[] {
  return children(pid).flatMap(c => {
    const start = startTime(c)
    return start === undefined ? [] : [{ pid: c, start }, ...descendants(c)]
  })
}

/** SIGKILLs the processes of `ids` that still run (same PID and same start time). */
export function killRemaining (ids: readonly ProcessId[]): void {
  for (const id of ids) {
    if (startTime(id.pid) !== id.start) continue
    try { process.kill(id.pid, 'SIGKILL') } catch { /* gone meanwhile */ }
  }
}

/**
 * Stops `p` with `signal` (SIGKILL after `graceMs`), then whatever of its tree is left. The
 * wait is for the process's exit, not for its pipes to close: children that outlive it hold
 * the pipes they inherited open until they are stopped too.
 */
export async function stopTree (p: TrackedProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!p.running) return
  const tree = descendants(p.pid)
  const child = p.child
  const exited = child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  p.signal(signal)
  let timer: NodeJS.Timeout | undefined
  const grace = new Promise<'grace'>(resolve => { timer = setTimeout(() => { resolve('grace') }, graceMs) })
  if (await Promise.race([exited, grace]) === 'grace') {
    p.kill()
    await exited
  }
  clearTimeout(timer)
  killRemaining(tree)
  await p.exited
}

/** The full path of the executable `name` in PATH or the sbin directories; undefined if none. */
export function findBinary (name: string, pathEnv = process.env['PATH'] ?? ''): string | undefined {
  const dirs = new Set([...pathEnv.split(':').filter(d => d !== ''), '/usr/local/sbin', '/usr/sbin', '/sbin'])
  for (const dir of dirs) {
    const file = join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      if (statSync(file).isFile()) return file
    } catch { /* not here */ }
  }
  return undefined
}
