// A watchdog for `zkproxy dev`: a small process that holds a pipe from dev on its stdin and
// cleans up after dev when that pipe ends without a "done" line, which is what happens when dev
// dies however it dies (SIGKILL included: the kernel closes the pipe). The ZooKeeper JVM needs
// it because Java never notices that its parent is gone; the replicas stop by themselves
// (they watch their own pipe from dev), and the watchdog waits for them before it stops
// ZooKeeper, so they can still deregister.
//
// Protocol, one line each on stdin: `await PID` (a child that stops by itself: wait for it,
// SIGKILL after a grace), `stop PID` (SIGTERM, SIGKILL after a grace), `dir PATH` (remove after),
// `forget PID` (it exited normally), `done` (a clean stop: nothing left to do).
import { spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** How long the self-stopping children get before SIGKILL; they deregister and drain. */
const AWAIT_GRACE_MS = 10_000
/** ZooKeeper's grace between SIGTERM and SIGKILL. */
const STOP_GRACE_MS = 5000
const POLL_MS = 100

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function signal (pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig) } catch {}
}

async function gone (pids: readonly number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, POLL_MS))
  }
  return true
}

async function cleanUp (awaited: Set<number>, stopped: Set<number>, dirs: Set<string>): Promise<void> {
  const waitFor = [...awaited]
  if (!await gone(waitFor, AWAIT_GRACE_MS)) for (const pid of waitFor) signal(pid, 'SIGKILL')
  const stop = [...stopped]
  for (const pid of stop) signal(pid, 'SIGTERM')
  if (!await gone(stop, STOP_GRACE_MS)) for (const pid of stop) signal(pid, 'SIGKILL')
  await gone(stop, STOP_GRACE_MS)
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
}

/** The watchdog process: reads its stdin until it ends, then cleans up unless told "done". */
async function main (): Promise<void> {
  const awaited = new Set<number>()
  const stopped = new Set<number>()
  const dirs = new Set<string>()
  let done = false
  // Ctrl-C or a closed terminal is for dev to handle; this process only answers to its pipe.
  for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => {})
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    const [verb, ...rest] = line.trim().split(' ')
    const arg = rest.join(' ')
    const pid = Number(arg)
    if (verb === 'await' && pid > 0) awaited.add(pid)
    else if (verb === 'stop' && pid > 0) stopped.add(pid)
    else if (verb === 'dir' && arg !== '') dirs.add(arg)
    else if (verb === 'forget') { awaited.delete(pid); stopped.delete(pid) } else if (verb === 'done') done = true
  }
  if (!done) await cleanUp(awaited, stopped, dirs)
}

export interface Watchdog {
  readonly pid: number
  /** A child that stops by itself when dev is gone: waited for before the others are stopped. */
  await (pid: number): void
  /** A child to stop (SIGTERM, then SIGKILL) when dev is gone. */
  stop (pid: number): void
  /** A directory to remove when dev is gone. */
  dir (path: string): void
  forget (pid: number): void
  /** Dev stopped everything itself: the watchdog exits without doing anything. */
  done (): void
}

/** Starts the watchdog (own session: a terminal's Ctrl-C and hang-up do not reach it). */
export function startWatchdog (): Watchdog {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['pipe', 'ignore', 'inherit'], detached: true })
  if (child.pid === undefined || child.stdin === null) throw new Error('cannot start the dev watchdog')
  // Dev must not wait for it to exit, nor fail if it is gone.
  child.unref()
  const stdin = child.stdin
  stdin.on('error', () => {})
  const say = (line: string): void => { if (stdin.writable) stdin.write(`${line}\n`) }
  return {
    pid: child.pid,
    await: (pid) => { say(`await ${pid}`) },
    stop: (pid) => { say(`stop ${pid}`) },
    dir: (path) => { say(`dir ${path}`) },
    forget: (pid) => { say(`forget ${pid}`) },
    done: () => { say('done'); stdin.end() }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
