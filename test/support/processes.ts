// Child processes started by tests, tracked so that none outlives the test run: every process
// is recorded until it exits, stopAllTracked() kills what is left, and process exit/signal hooks
// SIGKILL stragglers even when a test fails half-way.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { ms } from './until.js'

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface SpawnTrackedOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Label used in error messages; default the command's base name. */
  name?: string
  /** Keep at most this many characters of combined stdout+stderr (default ~1 MB). */
  maxOutputChars?: number
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024
const tracked = new Set<TrackedProcess>()

export class TrackedProcess {
  readonly child: ChildProcess
  readonly pid: number
  readonly name: string
  /** Settles once the process has exited (or failed to start); never rejects. */
  readonly exited: Promise<ExitInfo>
  #output = ''
  #maxOutput: number
  #exit: ExitInfo | undefined
  #listeners = new Set<() => void>()

  constructor (child: ChildProcess, pid: number, name: string, maxOutput: number) {
    this.child = child
    this.pid = pid
    this.name = name
    this.#maxOutput = maxOutput
    const onData = (chunk: Buffer | string): void => { this.#append(chunk.toString()) }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.#exit !== undefined) return
        this.#exit = info
        tracked.delete(this)
        this.#notify()
        resolve(info)
      }
      // 'close' rather than 'exit': it fires after the pipes are drained, so output() is complete.
      child.once('close', (code, signal) => { done({ code, signal }) })
      child.once('error', (err) => {
        this.#append(`\n[${name}] ${err.message}\n`)
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
          done({ code: child.exitCode, signal: child.signalCode })
        }
      })
    })
  }

  /** Whether the process has not exited yet. */
  get running (): boolean {
    return this.#exit === undefined
  }

  /** Exit status once exited, else undefined. */
  get exitInfo (): ExitInfo | undefined {
    return this.#exit
  }

  /** Combined stdout and stderr seen so far (the last ~1 MB). */
  output (): string {
    return this.#output
  }

  /** The last `n` lines of output, for error messages. */
  tail (n = 40): string {
    return this.#output.split('\n').slice(-n - 1).join('\n')
  }

  /** Resolves with the first match of `re` in the output; rejects on timeout or exit. */
  async waitForOutput (re: RegExp, timeoutMs = ms(10_000)): Promise<RegExpMatchArray> {
    return await new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = (): void => {
        const m = this.#output.match(re)
        if (m !== null) {
          finish()
          resolve(m)
        } else if (this.#exit !== undefined) {
          finish()
          reject(new Error(`${this.name} (pid ${this.pid}) exited (${describeExit(this.#exit)}) before printing ${String(re)}; output:\n${this.tail()}`))
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`${this.name} (pid ${this.pid}) did not print ${String(re)} within ${timeoutMs} ms; output:\n${this.tail()}`))
      }, timeoutMs)
      const finish = (): void => {
        clearTimeout(timer)
        this.#listeners.delete(check)
      }
      this.#listeners.add(check)
      check()
    })
  }

  /**
   * Sends `signal` (after SIGCONT, in case the process is paused) and waits for the exit,
   * escalating to SIGKILL after `graceMs`. Returns the exit code (null when ended by a signal).
   */
  async stop (signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
    if (this.#exit !== undefined) return this.#exit.code
    if (signal !== 'SIGKILL') this.#signal('SIGCONT')
    this.#signal(signal)
    let timer: NodeJS.Timeout | undefined
    const grace = new Promise<'grace'>((resolve) => { timer = setTimeout(() => resolve('grace'), graceMs) })
    try {
      if (await Promise.race([this.exited, grace]) === 'grace') this.#signal('SIGKILL')
    } finally {
      clearTimeout(timer)
    }
    return (await this.exited).code
  }

  /** SIGKILL without waiting; await `exited` to know it is gone. */
  kill (): void {
    if (this.#exit === undefined) this.#signal('SIGKILL')
  }

  /**
   * SIGSTOP, and on Linux wait until every thread is really stopped: the kernel stops threads
   * asynchronously, and a thread still running could answer one more request.
   */
  pause (timeoutMs = ms(2000)): void {
    this.#signal('SIGSTOP')
    const deadline = Date.now() + timeoutMs
    const nap = new Int32Array(new SharedArrayBuffer(4))
    while (!allThreadsStopped(this.pid)) {
      if (Date.now() > deadline) throw new Error(`${this.name} (pid ${this.pid}) did not stop within ${timeoutMs} ms of SIGSTOP`)
      Atomics.wait(nap, 0, 0, 1) // a synchronous 1 ms sleep: pause() must not return early
    }
  }

  /** SIGCONT after pause(). */
  resume (): void {
    this.#signal('SIGCONT')
  }

  /** Sends a signal if the process still runs; a vanished process is not an error. */
  signal (sig: NodeJS.Signals): void {
    if (this.#exit === undefined) this.#signal(sig)
  }

  #signal (sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
  }

  #append (text: string): void {
    this.#output += text
    // Trim in batches so a chatty process does not cost a copy per chunk.
    if (this.#output.length > this.#maxOutput * 1.25) this.#output = this.#output.slice(-this.#maxOutput)
    this.#notify()
  }

  #notify (): void {
    for (const l of [...this.#listeners]) l()
  }
}

/** Spawns `cmd` with piped output and records it until it exits. Throws if it cannot start. */
export function spawnTracked (cmd: string, args: readonly string[] = [], opts: SpawnTrackedOptions = {}): TrackedProcess {
  const { name, maxOutputChars, ...spawnOpts } = opts
  const child = spawn(cmd, args, { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'] })
  const label = name ?? cmd.split('/').pop() ?? cmd
  if (child.pid === undefined) {
    // Spawn failures (ENOENT, EACCES) are reported asynchronously; swallow that event.
    child.once('error', () => {})
    throw new Error(`cannot start ${cmd}: not found or not executable`)
  }
  const proc = new TrackedProcess(child, child.pid, label, maxOutputChars ?? DEFAULT_MAX_OUTPUT)
  tracked.add(proc)
  installHooks()
  return proc
}

/** Processes started by spawnTracked that have not exited yet. */
export function trackedProcesses (): TrackedProcess[] {
  return [...tracked]
}

/** SIGKILLs every tracked process and waits until all have exited. */
export async function stopAllTracked (): Promise<void> {
  const all = [...tracked]
  for (const p of all) p.kill()
  await Promise.all(all.map(async (p) => await p.exited))
}

const cleanups = new Set<() => void>()

/**
 * Runs `fn` (synchronously, after killing tracked processes) when this process exits or is
 * ended by SIGINT/SIGTERM/SIGHUP, e.g. to remove temp dirs. Returns a function that unregisters it.
 */
export function onExitCleanup (fn: () => void): () => void {
  cleanups.add(fn)
  installHooks()
  return () => { cleanups.delete(fn) }
}

function killAllSync (): void {
  for (const p of tracked) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  for (const fn of [...cleanups]) {
    try {
      fn()
    } catch {
      // best effort: the process is going away
    }
  }
}

/** True when all threads of `pid` are stopped or gone; always true where /proc is missing. */
function allThreadsStopped (pid: number): boolean {
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return true // exited, or not Linux
  }
  return tasks.every((t) => {
    try {
      // The state letter follows the parenthesised command name, which may itself hold ') '.
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
      return state === 'T' || state === 't' || state === 'Z' || state === 'X'
    } catch {
      return true // the thread ended meanwhile
    }
  })
}

export function describeExit (info: ExitInfo): string {
  return info.signal !== null ? `signal ${info.signal}` : `code ${String(info.code)}`
}

let hooksInstalled = false

function installHooks (): void {
  if (hooksInstalled) return
  hooksInstalled = true
  process.on('exit', killAllSync)
  // Node's default reaction to these signals skips 'exit' listeners (and vitest ends its
  // workers with SIGTERM): kill children first, then let the default happen by re-raising,
  // unless someone else has taken charge of the signal.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync()
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSignal)
        process.kill(process.pid, sig)
      }
    }
    process.on(sig, onSignal)
  }
}
