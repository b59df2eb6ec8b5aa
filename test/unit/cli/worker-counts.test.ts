// A worker's count bookkeeping, driven through a real Router the way the request path drives
// it (begin, failed before reaching the target): what it reports, and what it balances on.
import { describe, expect, it } from 'vitest'
import { Router } from '../../../src/proxy/router.js'
import { WorkerCounts } from '../../../src/cli/worker-counts.js'
import type { TargetInfo } from '../../../src/registry/target-set.js'

function target (name: string, generation: string, requests: number): TargetInfo {
  return { name, url: `http://127.0.0.1:${name === 'a' ? 4001 : 4002}`, origin: `http://127.0.0.1:${name === 'a' ? 4001 : 4002}`, requests, revision: undefined, startedAt: undefined, routes: [], stripPrefix: false, generation, version: 0, bare: false }
}

function setUp (): { counts: WorkerCounts, router: Router, apply: (ts: TargetInfo[]) => void } {
  const counts = new WorkerCounts()
  const router = new Router({ countFor: (t) => counts.cellFor(t), random: () => 0 })
  return { counts, router, apply: (ts) => { counts.update(ts); router.update(ts) } }
}

describe('WorkerCounts', () => {
  it('reports each routed request once, per registration, and nothing when idle', () => {
    const { counts, router, apply } = setUp()
    apply([target('a', '1', 10), target('b', '2', 10)])
    const [a, b] = router.targets
    router.begin(a!)
    router.begin(a!)
    router.begin(b!)
    expect(counts.take()).toEqual([['a', '1', 2], ['b', '2', 1]])
    expect(counts.take()).toEqual([])
  })

  it('a request taken back after its report is reported as a negative delta', () => {
    const { counts, router, apply } = setUp()
    apply([target('a', '1', 0)])
    const a = router.targets[0]!
    router.begin(a)
    expect(counts.take()).toEqual([['a', '1', 1]])
    router.failed(a, false)
    expect(counts.take()).toEqual([['a', '1', -1]])
  })

  it('balances on the primary\'s total plus what it routed since, without counting a report twice', () => {
    const { counts, router, apply } = setUp()
    apply([target('a', '1', 100)])
    const a = router.targets[0]!
    router.begin(a)
    router.begin(a)
    expect(a.requests).toBe(102)
    counts.take()
    expect(a.requests).toBe(102) // sent, not yet in the primary's total
    apply([target('a', '1', 110)]) // the primary's total now holds them (and other workers')
    expect(a.requests).toBe(110)
    router.begin(a)
    expect(a.requests).toBe(111)
  })

  it('a re-created registration keeps the old one\'s unreported requests under the old generation', () => {
    const { counts, router, apply } = setUp()
    apply([target('a', '1', 5)])
    router.begin(router.targets[0]!)
    apply([target('a', '9', 0)])
    router.begin(router.targets[0]!)
    expect(counts.take()).toEqual([['a', '9', 1], ['a', '1', 1]])
  })

  it('a target that left still has its unreported requests reported once', () => {
    const { counts, router, apply } = setUp()
    apply([target('a', '1', 0), target('b', '2', 0)])
    router.begin(router.targets[1]!)
    apply([target('a', '1', 0)])
    expect(counts.take()).toEqual([['b', '2', 1]])
    expect(counts.take()).toEqual([])
  })

  it('a counted message moves the named targets\' totals only', () => {
    const { counts, router, apply } = setUp()
    apply([target('a', '1', 10), target('b', '2', 10)])
    const [a, b] = router.targets
    router.begin(a!)
    router.begin(b!)
    counts.take()
    const counted = [target('a', '1', 30)]
    expect(router.counted(counted)).toBe(true)
    counts.counted(counted)
    expect(a!.count.total).toBe(30)
    // b's report is still in its total until a message carries b's new count.
    expect(b!.count.total).toBe(11)
  })
})
