import { describe, expect, it } from 'vitest'
import { Ejections } from '../../../src/balancer/ejection.js'
import { LeastUsedStrategy } from '../../../src/balancer/least-used.js'
import { seededRandom } from '../../../src/balancer/random.js'
import type { TargetState } from '../../../src/balancer/types.js'

function target (name: string, requests: number, inFlight = 0, generation = 'g1'): TargetState {
  return { name, requests, inFlight, generation }
}

// Fresh strategy + ejections over a fake clock; `fail` ejects targets at given times.
function setup (seed = 1, failures: Array<[name: string, at: number]> = [], now = 100_000): {
  strategy: LeastUsedStrategy
  ejections: Ejections
  setNow: (ms: number) => void
} {
  let clockMs = 0
  const ejections = new Ejections({ clock: () => clockMs })
  for (const [name, at] of failures) {
    clockMs = at
    ejections.noteFailure(name, 'g1')
  }
  clockMs = now
  const strategy = new LeastUsedStrategy({ random: seededRandom(seed), ejections })
  return { strategy, ejections, setNow: (ms) => { clockMs = ms } }
}

describe('LeastUsedStrategy', () => {
  describe('deterministic orders', () => {
    // Each row: targets, ejected (name, failure time; ejections last 1 s from there,
    // the clock reads `now`), exclude, maxAttempts, expected order. pick() must return
    // the first element.
    const cases: Array<{
      title: string
      targets: TargetState[]
      failures?: Array<[string, number]>
      now?: number
      exclude?: string[]
      maxAttempts?: number
      expected: string[]
    }> = [
      { title: 'empty input', targets: [], expected: [] },
      { title: 'lowest requests wins', targets: [target('a', 5), target('b', 3), target('c', 9)], expected: ['b', 'a', 'c'] },
      {
        title: 'tie on requests: fewest in-flight',
        targets: [target('a', 5, 2), target('b', 5, 1), target('c', 4, 9)],
        expected: ['c', 'b', 'a']
      },
      {
        title: 'requests outweigh in-flight',
        targets: [target('a', 1, 50), target('b', 2, 0)],
        expected: ['a', 'b']
      },
      {
        title: 'ejected target skipped, kept as a last resort',
        targets: [target('a', 1), target('b', 2), target('c', 3)],
        failures: [['a', 99_500]],
        expected: ['b', 'c', 'a']
      },
      {
        title: 'ejected target not needed when enough healthy ones',
        targets: [target('a', 1), target('b', 2), target('c', 3)],
        failures: [['a', 99_500]],
        maxAttempts: 2,
        expected: ['b', 'c']
      },
      {
        title: 'lapsed ejection: target is healthy again',
        targets: [target('a', 1), target('b', 2)],
        failures: [['a', 99_000]],
        expected: ['a', 'b']
      },
      {
        title: 'all ejected: least recently failed first, not load',
        targets: [target('a', 1), target('b', 2), target('c', 3)],
        failures: [['a', 99_900], ['b', 99_500], ['c', 99_700]],
        expected: ['b', 'c', 'a']
      },
      {
        title: 'all ejected, same failure time: by load',
        targets: [target('a', 3), target('b', 1), target('c', 2)],
        failures: [['a', 99_900], ['b', 99_900], ['c', 99_900]],
        expected: ['b', 'c', 'a']
      },
      {
        title: 'some ejected: healthy first, then ejected least recently failed first',
        targets: [target('a', 1), target('b', 2), target('c', 3), target('d', 4)],
        failures: [['a', 99_900], ['b', 99_300]],
        maxAttempts: 4,
        expected: ['c', 'd', 'b', 'a']
      },
      {
        title: 'exclude set honoured',
        targets: [target('a', 1), target('b', 2), target('c', 3)],
        exclude: ['a', 'c'],
        expected: ['b']
      },
      {
        title: 'exclude applies to ejected targets too',
        targets: [target('a', 1), target('b', 2)],
        failures: [['a', 99_900], ['b', 99_800]],
        exclude: ['b'],
        expected: ['a']
      },
      {
        title: 'everything excluded',
        targets: [target('a', 1), target('b', 2)],
        exclude: ['a', 'b'],
        expected: []
      },
      {
        title: 'maxAttempts truncates',
        targets: [target('a', 4), target('b', 3), target('c', 2), target('d', 1)],
        maxAttempts: 2,
        expected: ['d', 'c']
      },
      {
        title: 'maxAttempts 1',
        targets: [target('a', 4), target('b', 3)],
        maxAttempts: 1,
        expected: ['b']
      },
      {
        title: 'maxAttempts Infinity returns all',
        targets: [target('a', 4), target('b', 3), target('c', 2), target('d', 1)],
        maxAttempts: Infinity,
        expected: ['d', 'c', 'b', 'a']
      },
      {
        title: 'maxAttempts truncates the last-resort tail as well',
        targets: [target('a', 1), target('b', 2), target('c', 3)],
        failures: [['a', 99_900], ['b', 99_500], ['c', 99_700]],
        maxAttempts: 2,
        expected: ['b', 'c']
      }
    ]

    for (const { title, targets, failures = [], now, exclude, maxAttempts = 3, expected } of cases) {
      it(title, () => {
        const { strategy } = setup(7, failures, now)
        const excludeSet = exclude === undefined ? undefined : new Set(exclude)
        expect(strategy.order(targets, maxAttempts, excludeSet)).toEqual(expected)
        expect(strategy.pick(targets, excludeSet)).toBe(expected[0])
      })
    }
  })

  it.each([0, -1, Number.NaN, 0.5])('maxAttempts %s gives an empty order', (maxAttempts) => {
    const { strategy } = setup()
    expect(strategy.order([target('a', 1)], maxAttempts)).toEqual([])
  })

  it('maxAttempts is rounded down', () => {
    const { strategy } = setup()
    expect(strategy.order([target('a', 1), target('b', 2), target('c', 3)], 2.9)).toEqual(['a', 'b'])
  })

  it('a re-created znode (new generation) is not ejected', () => {
    const { strategy } = setup(1, [['a', 99_900]])
    expect(strategy.pick([target('a', 1, 0, 'g1'), target('b', 2)])).toBe('b')
    expect(strategy.pick([target('a', 1, 0, 'g2'), target('b', 2)])).toBe('a')
    expect(strategy.order([target('a', 1, 0, 'g2'), target('b', 2)], 3)).toEqual(['a', 'b'])
  })

  it('does not mutate its input', () => {
    const { strategy } = setup()
    const targets = Object.freeze([target('c', 3), target('a', 1), target('b', 1)])
    strategy.order(targets, 3)
    expect(targets.map((t) => t.name)).toEqual(['c', 'a', 'b'])
  })

  describe('full ties are broken at random, roughly uniformly', () => {
    const tied = [target('a', 7, 1), target('b', 7, 1), target('c', 7, 1), target('z', 8, 0)]
    const runs = 1000

    // One strategy per seed: every tied target must win for some seeds.
    it.each([
      ['pick', (s: LeastUsedStrategy) => s.pick(tied)],
      ['order()[0]', (s: LeastUsedStrategy) => s.order(tied, 3)[0]]
    ] as const)('%s over many seeds', (_title, choose) => {
      const counts = new Map<string, number>()
      for (let seed = 0; seed < runs; seed++) {
        const name = choose(setup(seed).strategy)
        counts.set(name ?? 'none', (counts.get(name ?? 'none') ?? 0) + 1)
      }
      for (const name of ['a', 'b', 'c']) expect(counts.get(name) ?? 0).toBeGreaterThan(runs * 0.2)
      expect(counts.get('z')).toBeUndefined()
    })

    // One strategy, many requests: the stream of one seed spreads too.
    it('pick over one seeded stream', () => {
      const { strategy } = setup(42)
      const counts = new Map<string, number>()
      for (let i = 0; i < runs; i++) {
        const name = strategy.pick(tied) ?? 'none'
        counts.set(name, (counts.get(name) ?? 0) + 1)
      }
      for (const name of ['a', 'b', 'c']) expect(counts.get(name) ?? 0).toBeGreaterThan(runs * 0.2)
    })

    it('every permutation of a tie shows up in order()', () => {
      const seen = new Set<string>()
      for (let seed = 0; seed < 200; seed++) seen.add(setup(seed).strategy.order(tied, 3).join(''))
      expect([...seen].sort()).toEqual(['abc', 'acb', 'bac', 'bca', 'cab', 'cba'])
    })
  })

  it('is reproducible under the same seed', () => {
    const tied = [target('a', 1), target('b', 1), target('c', 1), target('d', 1)]
    const run = (): string[] => {
      const { strategy } = setup(1234)
      return Array.from({ length: 20 }, () => strategy.order(tied, 4).join(''))
    }
    expect(run()).toEqual(run())
  })

  // Property-style: on random tables, pick() and order() agree modulo the random
  // tie-break, and order() is sorted the way docs/architecture.md says.
  it('pick agrees with order()[0] on 500 random tables', () => {
    const gen = seededRandom(2024)
    const int = (n: number): number => Math.floor(gen() * n)
    const loadKey = (t: TargetState): string => `${t.requests}/${t.inFlight}`

    for (let table = 0; table < 500; table++) {
      const now = 100_000
      const count = int(8)
      // Small value ranges so ties are frequent.
      const targets = Array.from({ length: count }, (_, i) => target(`t${i}`, int(4), int(3)))
      const failures: Array<[string, number]> = targets
        .filter(() => gen() < 0.35)
        .map((t) => [t.name, now - 1 - int(15) * 100])
      const exclude = new Set(targets.filter(() => gen() < 0.15).map((t) => t.name))
      const { strategy, ejections } = setup(table, failures, now)

      const eligible = targets.filter((t) => !exclude.has(t.name))
      const healthy = eligible.filter((t) => !ejections.isEjected(t.name, t.generation))
      const ejected = eligible.filter((t) => ejections.isEjected(t.name, t.generation))
      const failedAt = (t: TargetState): number => ejections.lastFailureAt(t.name) ?? -Infinity

      const picked = strategy.pick(targets, exclude)
      const order = strategy.order(targets, Infinity, exclude)
      const context = JSON.stringify({ table, targets, failures, exclude: [...exclude], picked, order })

      expect(order.length, context).toBe(eligible.length)
      expect(new Set(order), context).toEqual(new Set(eligible.map((t) => t.name)))
      if (eligible.length === 0) {
        expect(picked, context).toBeUndefined()
        continue
      }
      const pickedTarget = eligible.find((t) => t.name === picked)
      const firstTarget = eligible.find((t) => t.name === order[0])
      expect(pickedTarget, context).toBeDefined()
      expect(firstTarget, context).toBeDefined()
      if (pickedTarget === undefined || firstTarget === undefined) continue

      if (healthy.length > 0) {
        // Minimal (requests, inFlight) among non-ejected, and the same key as order()[0].
        const min = healthy.reduce((m, t) => (t.requests < m.requests || (t.requests === m.requests && t.inFlight < m.inFlight) ? t : m))
        expect(loadKey(pickedTarget), context).toBe(loadKey(min))
        expect(loadKey(firstTarget), context).toBe(loadKey(min))
      } else {
        const minAt = Math.min(...ejected.map(failedAt))
        expect(failedAt(pickedTarget), context).toBe(minAt)
        expect(failedAt(firstTarget), context).toBe(minAt)
      }

      // order(): healthy prefix sorted by load, then ejected sorted by failure time.
      const byName = new Map(eligible.map((t) => [t.name, t]))
      const ordered = order.map((name) => byName.get(name)).filter((t) => t !== undefined)
      const prefix = ordered.slice(0, healthy.length)
      const tail = ordered.slice(healthy.length)
      expect(new Set(prefix), context).toEqual(new Set(healthy))
      for (let i = 1; i < prefix.length; i++) {
        const a = prefix[i - 1]
        const b = prefix[i]
        if (a === undefined || b === undefined) continue
        expect(a.requests < b.requests || (a.requests === b.requests && a.inFlight <= b.inFlight), context).toBe(true)
      }
      for (let i = 1; i < tail.length; i++) {
        const a = tail[i - 1]
        const b = tail[i]
        if (a === undefined || b === undefined) continue
        expect(failedAt(a) <= failedAt(b), context).toBe(true)
      }
    }
  })
})
