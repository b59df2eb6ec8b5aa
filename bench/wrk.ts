// wrk, the load generator: its Lua scripts, one bounded run, and the parsing of its report.
import { describeExit, spawnTracked } from '../test/support/processes.js'

export interface WrkResult {
  readonly rps: number
  /** Latency percentiles, milliseconds (NaN when wrk printed none). */
  readonly p50: number
  readonly p99: number
  readonly requests: number
  /** Non-2xx/3xx answers plus socket errors (connect, read, write, timeout). */
  readonly errors: number
}

function toMs (v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n
}

/** Reads requests/s, the 50%/99% lines of --latency, the request count and the errors. */
export function parseWrk (out: string): WrkResult {
  const lat = (pct: string): number => {
    const m = new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s|m)`).exec(out)
    return m === null ? NaN : toMs(m[1]!, m[2]!)
  }
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: lat('50'),
    p99: lat('99'),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    errors: non2xx + (sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0))
  }
}

/** Every connection waits `ms` between requests: a paced load well below saturation. */
export function paceScript (ms: number): string {
  return `function delay() return ${ms} end\n`
}

/** Every request a POST with a body of `bytes` bytes. */
export function postScript (bytes: number): string {
  return `wrk.method = "POST"\nwrk.body = string.rep("x", ${bytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`
}

/** Every request with this Host (a routed case). */
export function hostScript (host: string): string {
  return `wrk.headers["Host"] = "${host}"\n`
}

export interface WrkRun {
  readonly seconds: number
  readonly connections: number
  /** A Lua script file (paceScript, postScript). */
  readonly script?: string | undefined
}

/** One wrk run, bounded by -d and, should wrk hang, by a kill 30 s later. */
export async function runWrk (wrk: string, url: string, run: WrkRun): Promise<WrkResult> {
  const args = ['-t1', `-c${run.connections}`, `-d${run.seconds}s`, '--latency', ...(run.script === undefined ? [] : ['-s', run.script]), url]
  // Tracked, so that a bench stopped half-way (SIGINT) stops its wrk too.
  const p = spawnTracked(wrk, args, { name: 'wrk' })
  const timer = setTimeout(() => { p.kill() }, (run.seconds + 30) * 1000)
  const exit = await p.exited.finally(() => { clearTimeout(timer) })
  const out = p.output()
  if (exit.code !== 0) throw new Error(`wrk ${args.join(' ')} exited ${describeExit(exit)}: ${out}`)
  return parseWrk(out)
}
