import { describe, expect, it } from 'vitest'
import { Ejections } from '../../../src/balancer/ejection.js'

// A hand-driven clock: tests move time explicitly, never sleep.
function fakeClock (start = 0): { clock: () => number, advance: (ms: number) => void, set: (ms: number) => void } {
  let now = start
  return {
    clock: () => now,
    advance: (ms) => { now += ms },
    set: (ms) => { now = ms }
  }
}

// Fails `name` once per lapsed ejection and records how long each ejection lasted.
function probeDurations (ejections: Ejections, time: ReturnType<typeof fakeClock>, count: number): number[] {
  const durations: number[] = []
  for (let i = 0; i < count; i++) {
    const start = time.clock()
    ejections.noteFailure('a', 'g1')
    const until = ejections.ejectedUntil('a')
    expect(until).toBeDefined()
    durations.push((until ?? 0) - start)
    time.set(until ?? 0)
  }
  return durations
}

describe('Ejections', () => {
  describe('backoff', () => {
    const cases: Array<{ title: string, baseMs?: number, maxMs?: number, expected: number[] }> = [
      { title: 'defaults: 1 s doubling, capped at 30 s', expected: [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000] },
      { title: 'custom base and cap', baseMs: 250, maxMs: 1500, expected: [250, 500, 1000, 1500, 1500] },
      { title: 'cap equal to base', baseMs: 500, maxMs: 500, expected: [500, 500, 500] }
    ]
    for (const { title, baseMs, maxMs, expected } of cases) {
      it(title, () => {
        const time = fakeClock(10_000)
        const ejections = new Ejections({ baseMs, maxMs, clock: time.clock })
        expect(probeDurations(ejections, time, expected.length)).toEqual(expected)
      })
    }

    it('stays finite and capped after thousands of failures', () => {
      const time = fakeClock()
      const ejections = new Ejections({ clock: time.clock })
      const durations = probeDurations(ejections, time, 3000)
      expect(durations.at(-1)).toBe(30_000)
      expect(durations.every(Number.isFinite)).toBe(true)
    })
  })

  it('ejects until the deadline, exclusive', () => {
    const time = fakeClock(5000)
    const ejections = new Ejections({ clock: time.clock })
    expect(ejections.isEjected('a', 'g1')).toBe(false)
    ejections.noteFailure('a', 'g1')
    expect(ejections.isEjected('a', 'g1')).toBe(true)
    expect(ejections.ejectedUntil('a')).toBe(6000)
    time.set(5999)
    expect(ejections.isEjected('a', 'g1')).toBe(true)
    time.set(6000)
    expect(ejections.isEjected('a', 'g1')).toBe(false)
    expect(ejections.ejectedUntil('a')).toBeUndefined()
    // A lapsed ejection still remembers the failure until the target answers.
    expect(ejections.lastFailureAt('a')).toBe(5000)
  })

  it('does not escalate on failures that arrive while already ejected', () => {
    const time = fakeClock()
    const ejections = new Ejections({ clock: time.clock })
    ejections.noteFailure('a', 'g1')
    // A burst of requests that were in flight when the target died.
    for (let i = 0; i < 10; i++) {
      time.advance(10)
      ejections.noteFailure('a', 'g1')
    }
    expect(ejections.ejectedUntil('a')).toBe(1000)
    expect(ejections.lastFailureAt('a')).toBe(100)
    // The next failure after the ejection lapsed is a failed probe: it doubles.
    time.set(1000)
    ejections.noteFailure('a', 'g1')
    expect(ejections.ejectedUntil('a')).toBe(3000)
  })

  it('a success clears the ejection and resets the backoff', () => {
    const time = fakeClock()
    const ejections = new Ejections({ clock: time.clock })
    probeDurations(ejections, time, 4)
    ejections.noteFailure('a', 'g1')
    expect(ejections.isEjected('a', 'g1')).toBe(true)
    ejections.noteSuccess('a')
    expect(ejections.isEjected('a', 'g1')).toBe(false)
    expect(ejections.ejectedUntil('a')).toBeUndefined()
    expect(ejections.lastFailureAt('a')).toBeUndefined()
    expect(probeDurations(ejections, time, 2)).toEqual([1000, 2000])
  })

  it('a new generation (re-created znode) clears the ejection', () => {
    const time = fakeClock()
    const ejections = new Ejections({ clock: time.clock })
    probeDurations(ejections, time, 3)
    ejections.noteFailure('a', 'g1')
    expect(ejections.isEjected('a', 'g1')).toBe(true)
    expect(ejections.isEjected('a', 'g2')).toBe(false)
    // The old record is gone, not merely hidden: asking with the old generation again
    // does not bring the ejection back.
    expect(ejections.isEjected('a', 'g1')).toBe(false)
    expect(ejections.lastFailureAt('a')).toBeUndefined()
  })

  it('a failure under a new generation starts the backoff over', () => {
    const time = fakeClock()
    const ejections = new Ejections({ clock: time.clock })
    probeDurations(ejections, time, 4)
    ejections.noteFailure('a', 'g2')
    expect(ejections.ejectedUntil('a')).toBe(time.clock() + 1000)
    expect(ejections.isEjected('a', 'g2')).toBe(true)
  })

  it('keeps targets independent', () => {
    const time = fakeClock()
    const ejections = new Ejections({ clock: time.clock })
    ejections.noteFailure('a', 'g1')
    expect(ejections.isEjected('a', 'g1')).toBe(true)
    expect(ejections.isEjected('b', 'g1')).toBe(false)
    ejections.noteSuccess('b')
    expect(ejections.isEjected('a', 'g1')).toBe(true)
  })

  it('forget and prune drop records of targets that left', () => {
    const time = fakeClock()
    const ejections = new Ejections({ clock: time.clock })
    for (const name of ['a', 'b', 'c', 'd']) ejections.noteFailure(name, 'g1')
    ejections.forget('a')
    expect(ejections.isEjected('a', 'g1')).toBe(false)
    ejections.prune(new Set(['c', 'x']))
    expect(ejections.lastFailureAt('b')).toBeUndefined()
    expect(ejections.lastFailureAt('d')).toBeUndefined()
    expect(ejections.isEjected('c', 'g1')).toBe(true)
    ejections.prune(new Set())
    expect(ejections.isEjected('c', 'g1')).toBe(false)
  })

  it.each([
    { baseMs: 0 },
    { baseMs: -1 },
    { baseMs: Number.NaN },
    { baseMs: Infinity },
    { baseMs: 1000, maxMs: 999 },
    { maxMs: Infinity }
  ])('rejects bad options %o', (options) => {
    expect(() => new Ejections({ ...options, clock: () => 0 })).toThrow(RangeError)
  })
})

describe('Ejections: operators and the published view', () => {
  it('a failed target stays failing after its ejection lapses, until it answers', () => {
    const time = fakeClock(1000)
    const e = new Ejections({ clock: time.clock })
    e.noteFailure('a', 'g1')
    time.advance(5000)
    expect(e.isEjected('a', 'g1')).toBe(false)
    expect(e.isFailing('a', 'g1')).toBe(true)
    expect(e.isFailing('a', 'g2')).toBe(false)
    e.noteSuccess('a')
    expect(e.isFailing('a', 'g1')).toBe(false)
  })

  it('eject sets a target aside for the given time without raising its backoff', () => {
    const time = fakeClock(1000)
    const e = new Ejections({ clock: time.clock, baseMs: 1000 })
    e.eject('a', 'g1', 30_000)
    expect(e.ejectedUntil('a')).toBe(31_000)
    time.advance(30_000)
    expect(e.isEjected('a', 'g1')).toBe(false)
    // The next real failure starts the backoff at its base.
    e.noteFailure('a', 'g1')
    expect(e.ejectedUntil('a')).toBe(32_000)
  })

  it('drain skips the target until undone, survives successes, and ends with its registration', () => {
    const e = new Ejections({ clock: () => 0 })
    e.drain('a', 'g1', true)
    expect(e.isEjected('a', 'g1')).toBe(true)
    expect(e.isDrained('a', 'g1')).toBe(true)
    expect(e.isFailing('a', 'g1')).toBe(false)
    expect(e.ejectedUntil('a')).toBeUndefined()
    expect(e.lastFailureAt('a')).toBeUndefined()
    e.noteFailure('a', 'g1')
    e.noteSuccess('a')
    expect(e.isDrained('a', 'g1')).toBe(true)
    expect(e.isFailing('a', 'g1')).toBe(false)
    e.drain('a', 'g1', false)
    expect(e.isEjected('a', 'g1')).toBe(false)
    e.drain('a', 'g1', true)
    // A re-created znode is a new registration: not drained.
    expect(e.isEjected('a', 'g2')).toBe(false)
    expect(e.isDrained('a', 'g1')).toBe(false)
  })
})
