// The built `zkproxy` command as tracked child processes, with their JSON log lines parsed
// (pino's `sink()` idea: assert on objects, not on message text). Build first: `npm run build`.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { spawnTracked, type ExitInfo, type TrackedProcess } from './processes.js'
import { ms, untilValue } from './until.js'

// From test/support/ (vitest) and from dist/test/support/ (compiled scripts) alike.
const candidates = [new URL('../../dist/src/cli/main.js', import.meta.url), new URL('../../src/cli/main.js', import.meta.url)]
  .map(u => fileURLToPath(u))

/** dist/src/cli/main.js, or an error saying how to build it. */
export function cliPath (): string {
  const found = candidates.find(p => existsSync(p))
  if (found === undefined) throw new Error(`the built CLI is missing (looked for ${candidates.join(', ')}): run \`npm run build\` first`)
  return found
}

export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [key: string]: unknown
}

/** A log line's `msg`, or a predicate on the parsed line. */
export type LogMatcher = string | ((line: LogLine) => boolean)

/** Every JSON log line in `output`; other lines (one-line errors, pretty logs) are skipped. */
export function parseLogLines (output: string): LogLine[] {
  const out: LogLine[] = []
  for (const text of output.split('\n')) {
    if (!text.startsWith('{')) continue
    try {
      const v = JSON.parse(text) as unknown
      if (typeof v === 'object' && v !== null && typeof (v as LogLine).msg === 'string') out.push(v as LogLine)
    } catch {}
  }
  return out
}

function matcher (match: LogMatcher): (line: LogLine) => boolean {
  return typeof match === 'string' ? (l: LogLine) => l.msg === match : match
}

/** The first log line of `proc` matching; fails at once if the process exits first. */
export async function waitForLog (proc: TrackedProcess, match: LogMatcher, timeoutMs = ms(15_000), label = String(match)): Promise<LogLine> {
  const test = matcher(match)
  const died = new AbortController()
  void proc.exited.then((info) => {
    died.abort(new Error(`${proc.name} (pid ${proc.pid}) exited (code ${String(info.code)}, signal ${String(info.signal)}) before logging ${label}; output:\n${proc.tail()}`))
  })
  try {
    return await untilValue(() => parseLogLines(proc.output()).find(test), { timeoutMs, intervalMs: 20, message: `log line ${label} from ${proc.name}`, signal: died.signal })
  } catch (err) {
    if (died.signal.aborted) throw err
    throw new Error(`${(err as Error).message}; output:\n${proc.tail()}`, { cause: err })
  }
}

export interface CliOptions {
  /**
   * Extra environment (flags' twins); `undefined` removes a variable. Inherited ZK_CONNECT and
   * ZKPROXY_* are dropped first: a developer's shell must not change what a test runs.
   */
  readonly env?: Record<string, string | undefined>
  /** For startCli: how long to wait for the ready line; for runCli: for the exit. */
  readonly timeoutMs?: number
  /** Label of the process in error messages (default `zkproxy <command>`). */
  readonly name?: string
}

export interface StartedCli {
  readonly proc: TrackedProcess
  /** The log line that `ready` matched. */
  readonly ready: LogLine
  /** Every JSON log line so far. */
  logs: () => LogLine[]
}

function childEnv (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'ZK_CONNECT' || k.startsWith('ZKPROXY_')) continue
    env[k] = v
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

function spawnCli (args: readonly string[], opts: CliOptions): TrackedProcess {
  return spawnTracked(process.execPath, [cliPath(), ...args], { env: childEnv(opts.env), name: opts.name ?? `zkproxy ${args[0] ?? ''}`.trim() })
}

/**
 * Starts `zkproxy <args>` and resolves once a log line matches `ready` (its msg or a
 * predicate), e.g. `const { proc, ready } = await startCli(args, 'replica listening')`.
 */
export async function startCli (args: readonly string[], ready: LogMatcher, opts: CliOptions = {}): Promise<StartedCli> {
  const proc = spawnCli(args, opts)
  const line = await waitForLog(proc, ready, opts.timeoutMs ?? ms(15_000))
  return { proc, ready: line, logs: () => parseLogLines(proc.output()) }
}

export interface CliResult extends ExitInfo {
  /** Combined stdout and stderr. */
  readonly output: string
  /** Non-empty output lines. */
  readonly lines: string[]
}

/** Runs `zkproxy <args>` to its exit (start-up failures, `status`); SIGKILLed after the timeout. */
export async function runCli (args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const proc = spawnCli(args, opts)
  const timer = setTimeout(() => { proc.kill() }, opts.timeoutMs ?? ms(15_000))
  try {
    const info = await proc.exited
    const output = proc.output()
    return { ...info, output, lines: output.split('\n').filter(l => l.trim() !== '') }
  } finally {
    clearTimeout(timer)
  }
}
