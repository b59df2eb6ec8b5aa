import { describe, expect, it } from 'vitest'
import { PassMemory, isResponseVerdict, type NotStorableReason } from '../../../src/cache/index.js'

describe('PassMemory (hit-for-miss)', () => {
  it('remembers a key until its TTL ends, or until a storable response forgets it', () => {
    let now = 1_000
    const memory = new PassMemory({ ttlMs: 120_000, maxKeys: 10, maxKeyChars: 1000, now: () => now })
    memory.remember('a')
    memory.remember('b')
    expect(memory.has('a')).toBe(true)
    memory.forget('b')
    expect(memory.has('b')).toBe(false)
    now += 120_000
    expect(memory.has('a')).toBe(true)
    now += 1
    expect(memory.has('a')).toBe(false)
    expect(memory.size).toBe(0)
  })

  it('a new unstorable response starts the TTL again', () => {
    let now = 10_000
    const memory = new PassMemory({ ttlMs: 1000, maxKeys: 10, maxKeyChars: 1000, now: () => now })
    memory.remember('a')
    now += 900
    memory.remember('a')
    now += 600
    expect(memory.has('a')).toBe(true)
    now += 401
    expect(memory.has('a')).toBe(false)
  })

  it('keeps at most maxKeys, dropping the least recently marked', () => {
    const memory = new PassMemory({ ttlMs: 60_000, maxKeys: 2, maxKeyChars: 1000, now: () => 5_000 })
    memory.remember('a')
    memory.remember('b')
    memory.remember('a')
    memory.remember('c')
    expect([memory.has('a'), memory.has('b'), memory.has('c')]).toEqual([true, false, true])
    memory.clear()
    expect(memory.size).toBe(0)
  })

  it('keeps the keys within maxKeyChars: long request-targets cannot hold more memory than that', () => {
    const memory = new PassMemory({ ttlMs: 60_000, maxKeys: 1000, maxKeyChars: 10_000, now: () => 5_000 })
    for (let i = 0; i < 100; i++) memory.remember(`${i}`.padEnd(4000, 'q'))
    expect(memory.size).toBe(2)
    expect(memory.has('99'.padEnd(4000, 'q'))).toBe(true)
    // A key longer than the whole bound is not kept at all.
    memory.remember('x'.repeat(20_000))
    expect(memory.has('x'.repeat(20_000))).toBe(false)
  })
})

describe('isResponseVerdict', () => {
  it.each<[NotStorableReason, number, boolean]>([
    ['no-store', 200, true],
    ['private', 200, true],
    ['set-cookie', 200, true],
    ['vary-star', 200, true],
    ['no-freshness', 200, true],
    ['status', 301, true],
    ['status', 404, true],
    ['status', 302, false],
    ['status', 400, false],
    ['status', 431, false],
    // Answers shaped by this request or this client say nothing about the resource.
    ['status', 304, false],
    ['status', 206, false],
    ['status', 401, false],
    ['status', 403, false],
    ['status', 412, false],
    ['status', 429, false],
    // An outage is not a property of the URL: coalescing protects the origin there.
    ['status', 500, false],
    ['status', 503, false],
    ['no-store', 502, false],
    // The request's own doing says nothing about the next request.
    ['request-no-store', 200, false],
    ['authorization', 200, false],
    ['unkeyed-header', 200, false],
    ['method', 200, false],
    ['no-key', 200, false],
    // An upstream cache's old copy is a moment, not the URL.
    ['stale', 200, false]
  ])('%s with status %i → %s', (reason, status, expected) => {
    expect(isResponseVerdict(reason, status)).toBe(expected)
  })

  it('an authenticated request\'s private answer says nothing of anonymous ones', () => {
    expect(isResponseVerdict('private', 200, true)).toBe(false)
    expect(isResponseVerdict('private', 200, false)).toBe(true)
  })
})
