// The report: ratios of medians and paired ratios, targets judged, the table, and the JSON
// document; the ratio tables name only cases that exist.
import { describe, expect, it } from 'vitest'
import { CASES } from '../../../bench/cases.js'
import {
  formatMirrored, formatRatio, formatReport, formatTable, formatZkOps, metTarget, MIRRORED_CASES, MIRRORED_RATIOS,
  mirroredRatioOf, RATIOS, ratioOf, summary, toJson, type RoundResult, type RunRecord
} from '../../../bench/report.js'
import { median } from '../../../bench/stats.js'

function round (rps: number, extra: Partial<RoundResult> = {}): RoundResult {
  return { rps, p50: 1, p99: 2, requests: rps * 5, errors: 0, cpuUs: 100, pacedRps: NaN, pacedP50: NaN, pacedP99: NaN, ...extra }
}

const results = new Map<string, RoundResult[]>([
  ['zkproxy', [round(1000), round(1200), round(900)]],
  ['zk-post', [round(800), round(1100), round(450)]],
  ['caddy', [round(500), round(600), round(700)]]
])

describe('median', () => {
  it('takes the middle value, or the mean of the middle two', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([])).toBeNaN()
  })
})

describe('ratioOf', () => {
  it('gives the ratio of the medians and the median of the rounds\' own ratios', () => {
    const v = ratioOf(results, { label: 'POST / GET', a: 'zk-post', b: 'zkproxy', metric: 'rps', target: { op: '>=', value: 0.8 } })
    expect(v?.ofMedians).toBeCloseTo(800 / 1000)
    // Rounds: 0.8, 0.9167, 0.5 -> 0.8.
    expect(v?.paired).toBeCloseTo(0.8)
    expect(v?.met).toBe(true)
  })

  it('is undefined when either case did not run', () => {
    expect(ratioOf(results, { label: 'x', a: 'zkproxy', b: 'nginx', metric: 'rps' })).toBeUndefined()
  })

  it('reads the metric it is given', () => {
    const lat = new Map([['a', [round(1, { p99: 3 })]], ['b', [round(1, { p99: 2 })]]])
    expect(ratioOf(lat, { label: 'x', a: 'a', b: 'b', metric: 'p99' })?.ofMedians).toBe(1.5)
  })
})

describe('metTarget', () => {
  it('judges >=, <= and <, and nothing without a target or a figure', () => {
    expect(metTarget(1.5, { op: '>=', value: 1.5 })).toBe(true)
    expect(metTarget(1.49, { op: '>=', value: 1.5 })).toBe(false)
    expect(metTarget(1.5, { op: '<=', value: 1.5 })).toBe(true)
    expect(metTarget(0.01, { op: '<', value: 0.01 })).toBe(false)
    expect(metTarget(2, undefined)).toBeUndefined()
    expect(metTarget(NaN, { op: '>=', value: 1 })).toBeUndefined()
  })
})

describe('mirroredRatioOf', () => {
  it('is the median of the blocks\' ratios, judged on that', () => {
    const blocks = new Map([['zk-hit', [200, 300, 100]], ['nginx-cache', [100, 100, 100]]])
    const v = mirroredRatioOf(blocks, { label: 'hits / nginx proxy_cache', a: 'zk-hit', b: 'nginx-cache', metric: 'rps', target: { op: '>=', value: 2 } })
    expect(v?.paired).toBe(2)
    expect(v?.met).toBe(true)
    expect(formatMirrored(v!)).toBe('  hits / nginx proxy_cache           2.00   target >= 2: met')
  })
})

describe('formatting', () => {
  it('prints a ratio with its paired value, its target and whether it is met', () => {
    // Rounds 2, 2, 1.29: paired 2; medians 1000 / 600.
    const v = ratioOf(results, { label: 'zkproxy / Caddy (1 core)', a: 'zkproxy', b: 'caddy', metric: 'rps', target: { op: '>=', value: 1.5 } })!
    expect(formatRatio(v)).toBe('  zkproxy / Caddy (1 core)           req/s     1.67 (paired 2.00)   target >= 1.5: met')
    const low = ratioOf(results, { label: 'POST', a: 'zk-post', b: 'zkproxy', metric: 'rps', target: { op: '>=', value: 0.9, note: 'why' }, note: 'a note' })!
    expect(formatRatio(low)).toMatch(/target >= 0\.9 \(why\): NOT met {3}a note$/)
  })

  it('sums errors over the rounds and takes medians of the rest', () => {
    const s = summary([round(1, { errors: 2, cpuUs: 5 }), round(3, { errors: 1, cpuUs: 7 }), round(2, { cpuUs: 6 })])
    expect(s).toMatchObject({ rps: 2, errors: 3, cpuUs: 6 })
  })

  it('shows a dash for a figure not measured (no paced run)', () => {
    const [head, row] = formatTable(new Map([['zkproxy', [round(1000)]]]))
    expect(head).toMatch(/^case +req\/s +p50 ms +p99 ms +paced p99 ms +cpu us\/req +errors$/)
    expect(row?.split(/ +/)).toEqual(['zkproxy', '1000', '1.00', '2.00', '-', '100.0', '0'])
  })

  it('judges ZooKeeper operations per request against 0.01', () => {
    expect(formatZkOps(50, 10_000)).toBe('ZooKeeper operations per proxied request: 0.00500   (50 operations / 10000 requests)   target < 0.01: met')
    expect(formatZkOps(0, 0)).toBe('ZooKeeper operations per proxied request: n/a')
  })
})

describe('formatReport and toJson', () => {
  const rec: RunRecord = {
    command: 'BENCH_ROUNDS=3 node dist/bench/run.js',
    date: '2026-12-06T10:00:00.000Z',
    machine: { cores: 2, cpu: 'AMD EPYC', node: 'v20.20.2' },
    settings: { durationS: 5, rounds: 3, connections: 50, pairBlocks: 0, pairS: 2 },
    cases: [...results.keys()].map(name => ({ name, describe: `the ${name} case` })),
    skipped: ['skip varnish: varnishd not found (apt-get install -y varnish)'],
    results,
    blocks: new Map(),
    zk: { operations: 30, requests: 15_000 }
  }

  it('starts with the command, says what was skipped, and prints only ratios whose cases ran', () => {
    const text = formatReport(rec)
    const lines = text.split('\n')
    expect(lines[1]).toBe('command: BENCH_ROUNDS=3 node dist/bench/run.js')
    expect(lines[3]).toBe('skip varnish: varnishd not found (apt-get install -y varnish)')
    expect(text).toContain('  zk-post      the zk-post case')
    expect(text).toContain('POST 1 KiB / GET')
    expect(text).toContain('zkproxy / Caddy (1 core)')
    expect(text).not.toContain('Varnish')
    expect(text).not.toContain('mirrored blocks')
    expect(text).toContain('ZooKeeper operations per proxied request: 0.00200')
  })

  it('writes one JSON document with every round, the medians, the ratios and null for NaN', () => {
    const doc = JSON.parse(toJson(rec)) as {
      format: string
      command: string
      skipped: string[]
      cases: Array<{ name: string, median: { rps: number, pacedP99: number | null }, rounds: unknown[] }>
      ratios: Array<{ section: string, label: string, a: string, b: string, ofMedians: number, met: boolean }>
      zookeeper: { perRequest: number }
    }
    expect(doc.format).toBe('zkproxy-bench/1')
    expect(doc.command).toBe(rec.command)
    expect(doc.skipped).toEqual(rec.skipped)
    expect(doc.cases.map(c => [c.name, c.median.rps, c.rounds.length])).toEqual([['zkproxy', 1000, 3], ['zk-post', 800, 3], ['caddy', 600, 3]])
    expect(doc.cases[0]?.median.pacedP99).toBeNull()
    expect(doc.ratios.map(r => [r.section, r.a, r.b])).toEqual([
      ['one request path (zkproxy, cache off)', 'zk-post', 'zkproxy'],
      ['against the peers (one zkproxy process)', 'zkproxy', 'caddy']
    ])
    expect(doc.zookeeper.perRequest).toBe(0.002)
  })
})

describe('ratio tables', () => {
  it('name only cases that exist', () => {
    const names = new Set(CASES.map(c => c.name))
    const named = [...RATIOS.flatMap(s => s.ratios), ...MIRRORED_RATIOS].flatMap(r => [r.a, r.b])
    expect(named.filter(n => !names.has(n))).toEqual([])
    expect(MIRRORED_CASES.filter(n => !names.has(n))).toEqual([])
  })

  it('include the ratios the report must print in one run', () => {
    const pairs = RATIOS.flatMap(s => s.ratios).filter(r => r.metric === 'rps').map(r => `${r.a}/${r.b}`)
    for (const p of ['zk-post/zkproxy', 'zk-log/zkproxy', 'zkproxy/caddy', 'zk-hit/nginx-cache', 'zk-hit/varnish', 'zkproxy/nginx']) expect(pairs).toContain(p)
  })
})
