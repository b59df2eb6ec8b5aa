// The benchmark's settings: environment variables (BENCH_*) and one flag (--json PATH), read
// and checked once. A misspelt knob is an error, not a silently ignored setting that would
// leave a run measuring something else than its command says.
import { parseArgs } from 'node:util'

export interface Knobs {
  /** Seconds per measured wrk run (and per warm-up run). */
  readonly durationS: number
  readonly rounds: number
  readonly connections: number
  /** The cases to run; undefined: all. */
  readonly cases: readonly string[] | undefined
  /** Mirrored blocks for the cache-hit ratios (0 skips them) and their runs' length. */
  readonly pairBlocks: number
  readonly pairS: number
  /** Extra node flags for the zkproxy processes (e.g. --cpu-prof). */
  readonly proxyNodeFlags: readonly string[]
  /** Another zkproxy build's CLI, run as the zk-baseline case; undefined: that case is skipped. */
  readonly baselineCli: string | undefined
  /** Where to write the results as JSON; undefined: nowhere. */
  readonly jsonPath: string | undefined
}

/** Every knob with its default and meaning (docs/benchmarks.md lists the same). */
export const KNOBS: Readonly<Record<string, string>> = {
  BENCH_DURATION_S: 'seconds per measured run (default 5)',
  BENCH_ROUNDS: 'rounds, each running every case once in rotated order (default 3)',
  BENCH_CONNECTIONS: 'wrk connections (default 50)',
  BENCH_CASES: 'comma-separated cases to run (default all)',
  BENCH_PAIR_BLOCKS: 'mirrored blocks for the cache-hit ratios, 0 skips them (default 6)',
  BENCH_PAIR_S: 'seconds per run in a mirrored block (default 2)',
  BENCH_PROXY_NODE_FLAGS: 'extra node flags for the zkproxy processes, e.g. --cpu-prof',
  BENCH_BASELINE_CLI: 'another build of zkproxy (its dist/src/cli/main.js), measured as zk-baseline (cache off, GET) beside this one',
  BENCH_JSON: 'write the results as JSON to this file (as --json PATH)'
}

export class KnobError extends Error {}

function integer (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new KnobError(`${name}=${raw}: expected a whole number >= ${min}`)
  }
  return n
}

/**
 * Reads the knobs from `env` and `argv` (the arguments after the script). `caseNames` are the
 * cases that exist, so that BENCH_CASES can name only those. Throws KnobError naming the bad one.
 */
export function parseKnobs (env: NodeJS.ProcessEnv, argv: readonly string[], caseNames: readonly string[]): Knobs {
  for (const name of Object.keys(env)) {
    if (name.startsWith('BENCH_') && !(name in KNOBS)) {
      const near = /SECONDS|DURATION/.test(name) ? ' (did you mean BENCH_DURATION_S?)' : ''
      throw new KnobError(`unknown setting ${name}${near}; known: ${Object.keys(KNOBS).join(', ')}`)
    }
  }
  let values: { json?: string | undefined }
  try {
    values = parseArgs({ args: [...argv], options: { json: { type: 'string' } }, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new KnobError(`${(err as Error).message}; usage: node dist/bench/run.js [--json PATH]`)
  }
  const jsonPath = values.json ?? (env['BENCH_JSON'] === '' ? undefined : env['BENCH_JSON'])
  if (jsonPath === '') throw new KnobError('--json needs a file path')
  let cases: string[] | undefined
  const rawCases = env['BENCH_CASES']
  if (rawCases !== undefined && rawCases.trim() !== '') {
    cases = rawCases.split(',').map(c => c.trim()).filter(c => c !== '')
    const unknown = cases.filter(c => !caseNames.includes(c))
    if (unknown.length > 0) throw new KnobError(`BENCH_CASES: unknown case ${unknown.join(', ')}; cases: ${caseNames.join(', ')}`)
  }
  return {
    durationS: integer(env, 'BENCH_DURATION_S', 5, 1),
    rounds: integer(env, 'BENCH_ROUNDS', 3, 1),
    connections: integer(env, 'BENCH_CONNECTIONS', 50, 1),
    cases,
    pairBlocks: integer(env, 'BENCH_PAIR_BLOCKS', 6, 0),
    pairS: integer(env, 'BENCH_PAIR_S', 2, 1),
    proxyNodeFlags: (env['BENCH_PROXY_NODE_FLAGS'] ?? '').split(' ').filter(f => f !== ''),
    baselineCli: env['BENCH_BASELINE_CLI'] === undefined || env['BENCH_BASELINE_CLI'] === '' ? undefined : env['BENCH_BASELINE_CLI'],
    jsonPath
  }
}

function shellQuote (s: string): string {
  return /^[\w.,:/=@+-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`
}

/** The command that reproduces this run: the BENCH_* settings, then node, script and flags. */
export function commandLine (env: NodeJS.ProcessEnv, script: string, argv: readonly string[]): string {
  const settings = Object.keys(env).filter(k => k in KNOBS).sort().map(k => `${k}=${shellQuote(env[k] ?? '')}`)
  return [...settings, 'node', shellQuote(script), ...argv.map(shellQuote)].join(' ')
}
