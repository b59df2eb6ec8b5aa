// The benchmark's report, from the measured rounds: the table of cases, the ratios (as data,
// with their targets), and the same as JSON for comparing runs. Pure: no I/O, no clock.
import { median } from './stats.js'

/** One case's figures in one round. */
export interface RoundResult {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly requests: number
  readonly errors: number
  /** CPU time of the process under test (and its children) per request, microseconds. */
  readonly cpuUs: number
  /** The paced run (only for the cases measured paced; NaN otherwise). */
  readonly pacedRps: number
  readonly pacedP50: number
  readonly pacedP99: number
}

export type Metric = 'rps' | 'p99' | 'pacedP99' | 'cpuUs'

export interface Target { readonly op: '>=' | '<=' | '<', readonly value: number, readonly note?: string }

export interface RatioSpec {
  readonly label: string
  readonly a: string
  readonly b: string
  readonly metric: Metric
  readonly target?: Target
  readonly note?: string
}

const METRIC_LABEL: Readonly<Record<Metric, string>> = { rps: 'req/s', p99: 'p99', pacedP99: 'p99 paced', cpuUs: 'CPU/req' }

const r = (label: string, a: string, b: string, metric: Metric, target?: Target, note?: string): RatioSpec =>
  ({ label, a, b, metric, ...(target === undefined ? {} : { target }), ...(note === undefined ? {} : { note }) })

/** The ratios printed from the rounds, by section; a ratio whose cases did not run is left out. */
export const RATIOS: ReadonlyArray<{ readonly section: string, readonly ratios: readonly RatioSpec[] }> = [
  {
    section: 'one request path (zkproxy, cache off)',
    ratios: [
      r('POST 1 KiB / GET', 'zk-post', 'zkproxy', 'rps', { op: '>=', value: 0.8 }),
      r('GET with --access-log / GET', 'zk-log', 'zkproxy', 'rps', { op: '>=', value: 0.8 }),
      r('GET / the baseline build\'s GET', 'zkproxy', 'zk-baseline', 'rps', { op: '>=', value: 1 }, 'BENCH_BASELINE_CLI'),
      r('GET / the baseline build\'s GET', 'zkproxy', 'zk-baseline', 'cpuUs'),
      r('hits / the baseline build\'s hits', 'zk-hit', 'zk-baseline-hit', 'rps', { op: '>=', value: 1 }, 'BENCH_BASELINE_CLI'),
      r('hits / the baseline build\'s hits', 'zk-hit', 'zk-baseline-hit', 'cpuUs'),
      r('200 routes / 1 route', 'zk-routes-200', 'zk-routes-1', 'rps', { op: '>=', value: 0.95 }, 'routed by Host'),
      r('200 routes / 1 route', 'zk-routes-200', 'zk-routes-1', 'cpuUs')
    ]
  },
  {
    section: 'against the peers (one zkproxy process)',
    ratios: [
      r('zkproxy / Caddy (1 core)', 'zkproxy', 'caddy', 'rps', { op: '>=', value: 1.5 }),
      r('zkproxy / nginx (1 worker)', 'zkproxy', 'nginx', 'rps', { op: '>=', value: 0.5 }),
      r('zkproxy / HAProxy (1 thread)', 'zkproxy', 'haproxy', 'rps'),
      r('zkproxy / nginx (all cores)', 'zkproxy', 'nginx-auto', 'rps'),
      r('zkproxy / Caddy (all cores)', 'zkproxy', 'caddy-auto', 'rps'),
      r('hits / nginx proxy_cache', 'zk-hit', 'nginx-cache', 'rps', { op: '>=', value: 2 }),
      r('hits / Varnish', 'zk-hit', 'varnish', 'rps', { op: '>=', value: 0.8, note: 'a target for a proxy on all cores' })
    ]
  },
  {
    section: 'all the cores (zkproxy --workers 2)',
    ratios: [
      r('routed (2 workers) / nginx (1 worker)', 'zk-w2', 'nginx', 'rps', { op: '>=', value: 0.5 }),
      r('hits (2 workers) / Varnish', 'zk-w2-hit', 'varnish', 'rps', { op: '>=', value: 0.8 }),
      r('routed (2 workers) / one process', 'zk-w2', 'zkproxy', 'rps', undefined, 'wrk shares the two cores'),
      r('hits (2 workers) / one process', 'zk-w2-hit', 'zk-hit', 'rps')
    ]
  },
  {
    section: 'latency and CPU against nginx (1 worker)',
    ratios: [
      r('zkproxy / nginx', 'zkproxy', 'nginx', 'p99', { op: '<=', value: 1.5 }, 'saturated: tracks the throughput ratio'),
      r('zkproxy / nginx', 'zkproxy', 'nginx', 'pacedP99', { op: '<=', value: 1.5 }),
      r('zkproxy / nginx', 'zkproxy', 'nginx', 'cpuUs', undefined, 'process under test only')
    ]
  },
  {
    section: 'what the runtime allows',
    ratios: [
      r('zkproxy / direct', 'zkproxy', 'direct', 'rps'),
      r('zkproxy / bare reply-from', 'zkproxy', 'bare', 'rps', undefined, 'cost of discovery, counting, failover'),
      r('floor / nginx', 'floor', 'nginx', 'rps', undefined, 'node:http + undici, no rules'),
      r('floor / nginx', 'floor', 'nginx', 'p99'),
      r('floor / nginx', 'floor', 'nginx', 'pacedP99'),
      r('floor / nginx', 'floor', 'nginx', 'cpuUs'),
      r('zkproxy / floor', 'zkproxy', 'floor', 'rps', undefined, "what zkproxy's rules cost over the runtime"),
      r('zkproxy / floor', 'zkproxy', 'floor', 'cpuUs')
    ]
  },
  {
    section: 'cache',
    ratios: [
      r('hits / same bytes (ceiling)', 'zk-hit', 'ceiling', 'rps', { op: '>=', value: 0.9 }),
      r('hits / direct', 'zk-hit', 'direct', 'rps', undefined, 'the origin sends fewer header fields'),
      r('hits / nginx (1 worker, no cache)', 'zk-hit', 'nginx', 'rps', { op: '>=', value: 1.5 }),
      r('misses / cache off', 'zk-miss', 'zkproxy', 'rps', undefined, 'what the cache costs uncacheable traffic'),
      r('misses / nginx', 'zk-miss', 'nginx', 'rps')
    ]
  }
]

/** The cases measured again in mirrored blocks, and the ratios read from those blocks. */
export const MIRRORED_CASES: readonly string[] = ['zk-hit', 'ceiling', 'nginx', 'nginx-cache', 'varnish']
export const MIRRORED_RATIOS: readonly RatioSpec[] = [
  r('hits / same bytes (ceiling)', 'zk-hit', 'ceiling', 'rps', { op: '>=', value: 0.9 }),
  r('hits / nginx (1 worker, no cache)', 'zk-hit', 'nginx', 'rps', { op: '>=', value: 1.5 }),
  r('same bytes / nginx', 'ceiling', 'nginx', 'rps', undefined, 'the most one Node process answering from memory reaches here'),
  r('hits / nginx proxy_cache', 'zk-hit', 'nginx-cache', 'rps', { op: '>=', value: 2 }),
  r('hits / Varnish', 'zk-hit', 'varnish', 'rps', { op: '>=', value: 0.8, note: 'a target for a proxy on all cores' })
]

export interface RatioValue {
  readonly label: string
  readonly a: string
  readonly b: string
  readonly metric: Metric
  /** The ratio of the two cases' medians. */
  readonly ofMedians: number
  /** The median of the rounds' own ratios (or of the mirrored blocks'). */
  readonly paired: number
  readonly target: Target | undefined
  readonly met: boolean | undefined
  readonly note: string | undefined
}

export function metTarget (value: number, target: Target | undefined): boolean | undefined {
  if (target === undefined || Number.isNaN(value)) return undefined
  return target.op === '>=' ? value >= target.value : target.op === '<=' ? value <= target.value : value < target.value
}

/**
 * Two estimates of a ratio: of the medians, and the median of the rounds' own ratios
 * ("paired": both cases ran within seconds of each other in each round, so a slow phase of a
 * shared host weighs on both sides of each ratio instead of on one side of the medians).
 * Undefined when either case did not run.
 */
export function ratioOf (results: ReadonlyMap<string, readonly RoundResult[]>, spec: RatioSpec): RatioValue | undefined {
  const as = results.get(spec.a)
  const bs = results.get(spec.b)
  if (as === undefined || bs === undefined || as.length === 0 || bs.length === 0) return undefined
  const ofMedians = median(as.map(x => x[spec.metric])) / median(bs.map(x => x[spec.metric]))
  const paired = median(as.map((x, i) => x[spec.metric] / (bs[i]?.[spec.metric] ?? NaN)))
  return { label: spec.label, a: spec.a, b: spec.b, metric: spec.metric, ofMedians, paired, target: spec.target, met: metTarget(ofMedians, spec.target), note: spec.note }
}

/** A ratio from mirrored blocks: the median of the blocks' ratios of summed requests/s. */
export function mirroredRatioOf (blocks: ReadonlyMap<string, readonly number[]>, spec: RatioSpec): RatioValue | undefined {
  const as = blocks.get(spec.a)
  const bs = blocks.get(spec.b)
  if (as === undefined || bs === undefined || as.length === 0 || bs.length === 0) return undefined
  const paired = median(as.map((v, i) => v / (bs[i] ?? NaN)))
  return { label: spec.label, a: spec.a, b: spec.b, metric: spec.metric, ofMedians: median(as) / median(bs), paired, target: spec.target, met: metTarget(paired, spec.target), note: spec.note }
}

function targetText (v: RatioValue, value: number): string {
  if (v.target === undefined) return ''
  const met = metTarget(value, v.target)
  return `   target ${v.target.op} ${v.target.value}${v.target.note === undefined ? '' : ` (${v.target.note})`}: ${met === true ? 'met' : 'NOT met'}`
}

export function formatRatio (v: RatioValue): string {
  return `  ${v.label.padEnd(34)} ${METRIC_LABEL[v.metric].padEnd(9)} ${v.ofMedians.toFixed(2)} (paired ${v.paired.toFixed(2)})` +
    targetText(v, v.ofMedians) + (v.note === undefined ? '' : `   ${v.note}`)
}

export function formatMirrored (v: RatioValue): string {
  return `  ${v.label.padEnd(34)} ${v.paired.toFixed(2)}` + targetText(v, v.paired) + (v.note === undefined ? '' : `   ${v.note}`)
}

/** The medians of one case's rounds, and its errors summed over them. */
export function summary (rounds: readonly RoundResult[]): RoundResult {
  const med = (k: keyof RoundResult): number => median(rounds.map(x => x[k]))
  return {
    rps: med('rps'),
    p50: med('p50'),
    p99: med('p99'),
    requests: med('requests'),
    errors: rounds.reduce((a, x) => a + x.errors, 0),
    cpuUs: med('cpuUs'),
    pacedRps: med('pacedRps'),
    pacedP50: med('pacedP50'),
    pacedP99: med('pacedP99')
  }
}

const num = (v: number, digits: number, width: number): string => (Number.isNaN(v) ? '-' : v.toFixed(digits)).padStart(width)

/** The table of cases: medians over the rounds, errors summed. */
export function formatTable (results: ReadonlyMap<string, readonly RoundResult[]>): string[] {
  const lines = ['case            req/s   p50 ms   p99 ms   paced p99 ms   cpu us/req   errors']
  for (const [name, rounds] of results) {
    const s = summary(rounds)
    lines.push(`${name.padEnd(12)} ${num(s.rps, 0, 8)} ${num(s.p50, 2, 8)} ${num(s.p99, 2, 8)} ${num(s.pacedP99, 2, 14)} ${num(s.cpuUs, 1, 12)} ${String(s.errors).padStart(8)}`)
  }
  return lines
}

/** Operations ZooKeeper received per request proxied by the cache-off proxy. */
export function formatZkOps (ops: number, requests: number): string {
  if (requests === 0) return 'ZooKeeper operations per proxied request: n/a'
  const per = ops / requests
  return `ZooKeeper operations per proxied request: ${per.toFixed(5)}   (${ops} operations / ${requests} requests)   target < 0.01: ${per < 0.01 ? 'met' : 'NOT met'}`
}

/** Everything one run produced, for the text report and the JSON file. */
export interface RunRecord {
  readonly command: string
  /** ISO 8601. */
  readonly date: string
  readonly machine: { readonly cores: number, readonly cpu: string, readonly node: string }
  readonly settings: { readonly durationS: number, readonly rounds: number, readonly connections: number, readonly pairBlocks: number, readonly pairS: number }
  /** Every case that ran, in order, with what it is (peers with their version). */
  readonly cases: ReadonlyArray<{ readonly name: string, readonly describe: string }>
  /** One line per case that did not run and why (a missing binary says what to install). */
  readonly skipped: readonly string[]
  readonly results: ReadonlyMap<string, readonly RoundResult[]>
  readonly blocks: ReadonlyMap<string, readonly number[]>
  readonly zk: { readonly operations: number, readonly requests: number }
}

function ratios (rec: RunRecord): Array<{ section: string, values: RatioValue[] }> {
  return RATIOS.map(s => ({ section: s.section, values: s.ratios.flatMap(spec => ratioOf(rec.results, spec) ?? []) }))
    .filter(s => s.values.length > 0)
}

function mirroredRatios (rec: RunRecord): RatioValue[] {
  return MIRRORED_RATIOS.flatMap(spec => mirroredRatioOf(rec.blocks, spec) ?? [])
}

export function formatReport (rec: RunRecord): string {
  const s = rec.settings
  const lines = [
    `zkproxy benchmark — ${rec.date}`,
    `command: ${rec.command}`,
    `machine: ${rec.machine.cores} cores (${rec.machine.cpu}), Node ${rec.machine.node}; wrk -t1 -c${s.connections} -d${s.durationS}s, ${s.rounds} round${s.rounds === 1 ? '' : 's'} in rotated order, medians`,
    ...rec.skipped,
    '',
    ...formatTable(rec.results),
    '',
    ...rec.cases.map(c => `  ${c.name.padEnd(12)} ${c.describe}`)
  ]
  const sections = ratios(rec)
  if (sections.length > 0) lines.push('', 'ratios: of the medians, and (paired) the median of the rounds\' own ratios')
  for (const { section, values } of sections) lines.push(`${section}:`, ...values.map(formatRatio))
  const mirrored = mirroredRatios(rec)
  if (mirrored.length > 0) {
    lines.push(`mirrored blocks (${s.pairBlocks} blocks of ${MIRRORED_CASES.filter(c => rec.blocks.has(c)).join(', ')} and back; ${s.pairS} s runs), medians of the blocks' ratios:`)
    lines.push(...mirrored.map(formatMirrored))
  }
  if (rec.results.has('zkproxy')) lines.push(formatZkOps(rec.zk.operations, rec.zk.requests))
  return lines.join('\n') + '\n'
}

/** The run as one JSON document (NaN becomes null), for comparing runs with a script. */
export function toJson (rec: RunRecord): string {
  const doc = {
    format: 'zkproxy-bench/1',
    date: rec.date,
    command: rec.command,
    machine: rec.machine,
    settings: rec.settings,
    skipped: rec.skipped,
    cases: rec.cases.map(c => ({ ...c, median: summary(rec.results.get(c.name) ?? []), rounds: rec.results.get(c.name) ?? [] })),
    ratios: ratios(rec).flatMap(s => s.values.map(v => ({ section: s.section, ...v }))),
    mirrored: { blocks: Object.fromEntries(rec.blocks), ratios: mirroredRatios(rec) },
    zookeeper: { ...rec.zk, perRequest: rec.zk.requests === 0 ? null : rec.zk.operations / rec.zk.requests }
  }
  return JSON.stringify(doc, null, 2) + '\n'
}
