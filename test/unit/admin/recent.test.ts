// RecentActivity with fake timers and a hand-made runtime: the hit ratio covers the last minute
// only and counts bypasses; a target that leaves is listed with the reason one proxy can tell
// (failing when it went: session expired; data no longer decoding: rejected; else
// deregistered) for 5 minutes, and no longer once it is back.
import { EventEmitter } from 'node:events'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Ejections } from '../../../src/balancer/ejection.js'
import { RecentActivity } from '../../../src/admin/recent.js'
import type { RuntimeView } from '../../../src/admin/runtime-view.js'

interface FakeTarget { name: string, url: string, generation: string }

function fakeRuntime () {
  const stats = { hits: 0, misses: 0, bypasses: { method: 0, 'request-no-cache': 0, precondition: 0 } }
  const targets = new EventEmitter()
  const ejections = new Ejections({ clock: () => Date.now() })
  const router = { targets: [] as FakeTarget[], ejections }
  const view = { targets, router, cache: { stats: () => stats } } as unknown as RuntimeView
  const snapshot = (live: FakeTarget[], rejected: string[] = []): void => {
    router.targets = live
    targets.emit('snapshot', { targets: live, rejected: rejected.map(name => ({ name, reason: 'bad' })) })
  }
  return { view, stats, ejections, snapshot }
}

beforeEach(() => { vi.useFakeTimers({ now: 1_000_000 }) })
afterEach(() => { vi.useRealTimers() })

describe('RecentActivity', () => {
  it('hit ratio over the last minute, bypassed requests included', () => {
    const f = fakeRuntime()
    const r = new RecentActivity(f.view).start()
    // A first minute of nothing but hits...
    f.stats.hits = 600
    vi.advanceTimersByTime(60_000)
    // ...then a minute with 30 hits, 10 misses, 20 bypasses.
    f.stats.hits += 30; f.stats.misses += 10; f.stats.bypasses['request-no-cache'] += 15; f.stats.bypasses.method += 5
    vi.advanceTimersByTime(60_000)
    expect(r.hitWindow()).toEqual({ seconds: 60, hits: 30, misses: 10, bypassed: 20, ratio: 0.5 })
    vi.advanceTimersByTime(60_000)
    expect(r.hitWindow()).toMatchObject({ hits: 0, ratio: null })
    r.stop()
  })

  it('lists targets that left with why and when, for 5 minutes', () => {
    const f = fakeRuntime()
    const r = new RecentActivity(f.view).start()
    const a = { name: 'a', url: 'http://a', generation: '1' }
    const b = { name: 'b', url: 'http://b', generation: '1' }
    const c = { name: 'c', url: 'http://c', generation: '1' }
    f.snapshot([a, b, c])
    f.ejections.noteFailure('b', '1')
    vi.advanceTimersByTime(1000)
    f.snapshot([c], ['c-bad'])
    f.snapshot([], ['c'])
    const at = new Date(Date.now()).toISOString()
    expect(r.departed()).toEqual([
      { name: 'c', url: 'http://c', reason: 'rejected', at },
      { name: 'b', url: 'http://b', reason: 'session expired', at },
      { name: 'a', url: 'http://a', reason: 'deregistered', at }
    ])
    f.snapshot([a])
    expect(r.departed().map(d => d.name)).toEqual(['c', 'b'])
    vi.advanceTimersByTime(5 * 60_000)
    expect(r.departed()).toEqual([])
    r.stop()
  })
})
