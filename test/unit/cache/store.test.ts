import { afterEach, describe, expect, it, vi } from 'vitest'
import { entryBytes } from '../../../src/cache/entry.js'
import type { CachedEntry } from '../../../src/cache/entry.js'
import { ResponseCache } from '../../../src/cache/store.js'
import type { EvictionReason, ResponseCacheOptions } from '../../../src/cache/store.js'
import { fakeClock, request, storedEntry } from './fixtures.js'

function setup (opts: Partial<ResponseCacheOptions> = {}): { cache: ResponseCache, time: ReturnType<typeof fakeClock>, evicted: EvictionReason[] } {
  const time = fakeClock()
  // Freshness and the store's own expiry both come from the injected clock.
  const cache = new ResponseCache({ maxEntries: 100, maxBytes: 10_000_000, now: time.now, ...opts })
  const evicted: EvictionReason[] = []
  cache.onEvict((reason) => { evicted.push(reason) })
  return { cache, time, evicted }
}

function put (cache: ResponseCache, now: number, url: string, res: Parameters<typeof storedEntry>[2] = {}, headers = {}): CachedEntry {
  const req = request(url, headers)
  const entry = storedEntry(req, now, res)
  expect(cache.set(req, entry)).toBe(true)
  return entry
}

describe('ResponseCache', () => {
  afterEach(() => { vi.useRealTimers() })

  it('stores a GET and serves it to GET and HEAD, not to other methods', () => {
    const { cache, time } = setup()
    const entry = put(cache, time.now(), '/a')
    expect(cache.get(request('/a'))?.entry).toBe(entry)
    expect(cache.get(request('/a', {}, 'HEAD'))?.entry).toBe(entry)
    expect(cache.get(request('/a', {}, 'POST'))).toBeUndefined()
    expect(cache.get(request('/b'))).toBeUndefined()
    expect(cache.stats()).toMatchObject({ entries: 1 })
  })

  it('refuses to store for a HEAD request or an uncacheable key', () => {
    const { cache, time } = setup()
    const entry = storedEntry(request('/a'), time.now())
    expect(cache.set(request('/a', {}, 'HEAD'), entry)).toBe(false)
    expect(cache.set({ method: 'GET', url: '/a', headers: { host: 'a.com/x' } }, entry)).toBe(false)
    expect(cache.stats().entries).toBe(0)
  })

  it('unkeyed headers neither split nor select entries', () => {
    const { cache, time } = setup()
    const entry = put(cache, time.now(), '/a')
    expect(cache.get(request('/a', { 'x-forwarded-host': 'evil.example', cookie: 'a=1' }))?.entry).toBe(entry)
  })

  describe('Vary variants', () => {
    const vary = { headers: { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' } }

    it('gzip and br requests get their own variants', () => {
      const { cache, time } = setup()
      const gzip = put(cache, time.now(), '/a', { ...vary, body: 'gz' }, { 'accept-encoding': 'gzip' })
      const br = put(cache, time.now(), '/a', { ...vary, body: 'br' }, { 'accept-encoding': 'br' })
      expect(cache.stats().entries).toBe(2)
      expect(cache.get(request('/a', { 'accept-encoding': 'gzip' }))?.entry).toBe(gzip)
      expect(cache.get(request('/a', { 'accept-encoding': 'br' }))?.entry).toBe(br)
      expect(cache.get(request('/a', { 'accept-encoding': 'identity' }))).toBeUndefined()
      expect(cache.get(request('/a'))).toBeUndefined()
    })

    it('Vary names and request header names are case-insensitive', () => {
      const { cache, time } = setup()
      const entry = put(cache, time.now(), '/a', { headers: { 'cache-control': 'max-age=60', vary: 'ACCEPT-ENCODING' } }, { 'Accept-Encoding': 'gzip' })
      expect(cache.get(request('/a', { 'accept-encoding': 'gzip' }))?.entry).toBe(entry)
    })

    it('a response for the same variant replaces the old one', () => {
      const { cache, time, evicted } = setup()
      put(cache, time.now(), '/a', { ...vary, body: 'v1' }, { 'accept-encoding': 'gzip' })
      const v2 = put(cache, time.now() + 1, '/a', { ...vary, body: 'v2' }, { 'accept-encoding': 'gzip' })
      expect(cache.stats().entries).toBe(1)
      expect(cache.get(request('/a', { 'accept-encoding': 'gzip' }))?.entry).toBe(v2)
      expect(evicted).toEqual([])
    })

    it('a response with a different Vary replaces the older variants', () => {
      const { cache, time } = setup()
      put(cache, time.now(), '/a', { ...vary }, { 'accept-encoding': 'gzip' })
      const plain = put(cache, time.now(), '/a')
      expect(cache.stats().entries).toBe(1)
      expect(cache.get(request('/a', { 'accept-encoding': 'br' }))?.entry).toBe(plain)
    })

    it('coalesceKey splits waiters by known Vary values only', () => {
      const { cache, time } = setup()
      const gzip = request('/a', { 'accept-encoding': 'gzip' })
      const br = request('/a', { 'accept-encoding': 'br' })
      expect(cache.coalesceKey(gzip)).toBe(cache.coalesceKey(br))
      put(cache, time.now(), '/a', { ...vary }, { 'accept-encoding': 'gzip' })
      expect(cache.coalesceKey(gzip)).not.toBe(cache.coalesceKey(br))
      expect(cache.coalesceKey({ url: '*', headers: { host: 'a' } })).toBeUndefined()
    })
  })

  describe('bounds', () => {
    it('evicts the least recently used entry when maxEntries is reached', () => {
      const { cache, time, evicted } = setup({ maxEntries: 2 })
      put(cache, time.now(), '/a')
      put(cache, time.now(), '/b')
      expect(cache.get(request('/a'))).toBeDefined() // /a is now more recent than /b
      put(cache, time.now(), '/c')
      expect(cache.get(request('/b'))).toBeUndefined()
      expect(cache.get(request('/a'))).toBeDefined()
      expect(cache.get(request('/c'))).toBeDefined()
      expect(cache.stats()).toMatchObject({ entries: 2, evictions: 1 })
      expect(evicted).toEqual(['capacity'])
    })

    it('keeps exact recency through runs of hits on the most recent entry', () => {
      const { cache, time, evicted } = setup({ maxEntries: 3 })
      put(cache, time.now(), '/a')
      put(cache, time.now(), '/b')
      expect(cache.get(request('/b'))).toBeDefined() // already the most recent: stays last
      expect(cache.get(request('/b'))).toBeDefined()
      expect(cache.get(request('/a'))).toBeDefined() // order: b, a
      expect(cache.get(request('/b'))).toBeDefined() // order: a, b
      expect(cache.get(request('/b'))).toBeDefined()
      put(cache, time.now(), '/c') // order: a, b, c
      put(cache, time.now(), '/d') // evicts a
      expect(cache.get(request('/a'))).toBeUndefined()
      cache.invalidateUrl('example.com', '/d') // the most recent entry leaves
      expect(cache.get(request('/c'))).toBeDefined() // order: b, c
      put(cache, time.now(), '/e')
      put(cache, time.now(), '/f') // evicts b
      expect(cache.get(request('/b'))).toBeUndefined()
      expect(cache.get(request('/c'))).toBeDefined()
      expect(evicted).toEqual(['capacity', 'invalidated', 'capacity'])
    })

    it('evicts by bytes until the new entry fits, and accounts bytes exactly', () => {
      const time = fakeClock()
      const body = Buffer.alloc(1000)
      const a = storedEntry(request('/a'), time.now(), { body })
      const size = entryBytes(a, 'example.com/a')
      const { cache } = setup({ maxBytes: size * 2 + 10 })
      put(cache, time.now(), '/a', { body })
      put(cache, time.now(), '/b', { body })
      expect(cache.stats()).toMatchObject({ entries: 2, bytes: size * 2, evictions: 0 })
      put(cache, time.now(), '/c', { body: Buffer.alloc(1500) }) // needs both slots' room
      expect(cache.stats()).toMatchObject({ entries: 1, evictions: 2 })
      expect(cache.get(request('/c'))).toBeDefined()
      cache.clear()
      expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 })
    })

    it('refuses bodies over maxObjectBytes (default 1 MiB) and entries over maxBytes', () => {
      const { cache, time } = setup()
      expect(cache.fits(1024 * 1024)).toBe(true)
      expect(cache.fits(1024 * 1024 + 1)).toBe(false)
      const req = request('/big')
      expect(cache.set(req, storedEntry(req, time.now(), { body: Buffer.alloc(1024 * 1024 + 1) }))).toBe(false)
      const small = setup({ maxBytes: 500, maxObjectBytes: 10_000 })
      expect(small.cache.fits(600)).toBe(false)
      expect(small.cache.set(req, storedEntry(req, time.now(), { body: Buffer.alloc(600) }))).toBe(false)
      expect(cache.stats().entries + small.cache.stats().entries).toBe(0)
    })
  })

  describe('time', () => {
    it('expires by ms on the injected clock; stale-if-error window after that', () => {
      const { cache, time, evicted } = setup({ staleIfErrorSec: 30 })
      put(cache, time.now(), '/a') // max-age=60
      time.advance(59_999)
      expect(cache.get(request('/a'))).toBeDefined()
      time.advance(1)
      expect(cache.get(request('/a'))).toBeUndefined()
      expect(cache.getStale(request('/a'))?.ageSec).toBe(60)
      time.advance(29_999)
      expect(cache.getStale(request('/a'))).toBeDefined()
      time.advance(1)
      expect(cache.getStale(request('/a'))).toBeUndefined()
      expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, expirations: 1 })
      expect(evicted).toEqual(['expired'])
    })

    it('getStale returns fresh entries too', () => {
      const { cache, time } = setup({ staleIfErrorSec: 30 })
      const entry = put(cache, time.now(), '/a')
      expect(cache.getStale(request('/a'))?.entry).toBe(entry)
    })

    it('no stale serving without a window or when the response forbids it', () => {
      const none = setup()
      put(none.cache, none.time.now(), '/a')
      none.time.advance(60_000)
      expect(none.cache.getStale(request('/a'))).toBeUndefined()

      const { cache, time } = setup({ staleIfErrorSec: 30 })
      put(cache, time.now(), '/a', { headers: { 'cache-control': 'max-age=60, must-revalidate' } })
      time.advance(60_000)
      expect(cache.getStale(request('/a'))).toBeUndefined()
    })

    it('stale-while-revalidate (RFC 5861 §3): usable during a revalidation for its own window, kept that long, never for errors', () => {
      const { cache, time, evicted } = setup()
      put(cache, time.now(), '/a', { headers: { 'cache-control': 'max-age=60, stale-while-revalidate=30' } })
      expect(cache.getWhileRevalidating(request('/a'))).toBeDefined() // fresh counts too
      time.advance(60_000)
      expect(cache.get(request('/a'))).toBeUndefined()
      expect(cache.getStale(request('/a'))).toBeUndefined() // no --stale-if-error window
      expect(cache.getWhileRevalidating(request('/a'))?.ageSec).toBe(60)
      time.advance(29_999)
      expect(cache.getWhileRevalidating(request('/a'))).toBeDefined()
      time.advance(1)
      expect(cache.getWhileRevalidating(request('/a'))).toBeUndefined()
      expect(cache.stats()).toMatchObject({ entries: 0, expirations: 1 })
      expect(evicted).toEqual(['expired'])
    })

    it('no stale-while-revalidate window for must-revalidate responses or without the directive', () => {
      const { cache, time } = setup()
      put(cache, time.now(), '/a', { headers: { 'cache-control': 'max-age=60, must-revalidate, stale-while-revalidate=30' } })
      put(cache, time.now(), '/b', { headers: { 'cache-control': 'max-age=60' } })
      time.advance(60_000)
      expect(cache.getWhileRevalidating(request('/a'))).toBeUndefined()
      expect(cache.getWhileRevalidating(request('/b'))).toBeUndefined()
    })

    it('Age = upstream Age at store time + whole seconds resident (§4.2.3)', () => {
      const { cache, time } = setup()
      put(cache, time.now(), '/a', { headers: { 'cache-control': 'max-age=60', age: '5' } })
      expect(cache.get(request('/a'))?.ageSec).toBe(5)
      time.advance(2_500)
      const hit = cache.get(request('/a'))
      expect(hit?.ageSec).toBe(7)
      expect(hit?.entry.headers.age).toBeUndefined() // the proxy sets Age from ageSec
      time.advance(52_500) // 55 s resident + 5 s upstream = the 60 s lifetime
      expect(cache.get(request('/a'))).toBeUndefined()
    })

    it('entries nobody asks for again are freed once their lifetime and stale window are over', () => {
      const { cache, time, evicted } = setup({ staleIfErrorSec: 10 })
      const req = request('/a')
      cache.set(req, storedEntry(req, time.now(), { headers: { 'cache-control': 'max-age=2' } }))
      time.advance(2_000 + 10_000)
      expect(cache.stats().entries).toBe(1) // a 1 s grace beyond our own expiry
      time.advance(1_001)
      expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0, expirations: 1 })
      expect(evicted).toEqual(['expired'])
    })
  })

  describe('invalidation', () => {
    it('invalidateUrl drops every variant of that URL only (§4.4)', () => {
      const { cache, time, evicted } = setup()
      const vary = { headers: { 'cache-control': 'max-age=60', vary: 'accept-encoding' } }
      put(cache, time.now(), '/a?x=1', vary, { 'accept-encoding': 'gzip' })
      put(cache, time.now(), '/a?x=1', vary, { 'accept-encoding': 'br' })
      put(cache, time.now(), '/a?x=2')
      expect(cache.invalidateUrl('EXAMPLE.com', '/a?x=1')).toBe(2)
      expect(cache.get(request('/a?x=1', { 'accept-encoding': 'gzip' }))).toBeUndefined()
      expect(cache.get(request('/a?x=2'))).toBeDefined()
      expect(cache.stats().entries).toBe(1)
      expect(evicted).toEqual(['invalidated', 'invalidated'])
      expect(cache.invalidateUrl('example.com', '/nothing')).toBe(0)
      expect(cache.invalidateUrl('bad/host', '/a')).toBe(0)
    })

    it('clear drops everything but keeps the counters, and reports no eviction', () => {
      const { cache, time, evicted } = setup({ maxEntries: 2 })
      put(cache, time.now(), '/a')
      put(cache, time.now(), '/b')
      put(cache, time.now(), '/c')
      cache.clear()
      expect(cache.get(request('/b'))).toBeUndefined()
      expect(cache.stats()).toEqual({ entries: 0, bytes: 0, evictions: 1, expirations: 0 })
      expect(evicted).toEqual(['capacity'])
      put(cache, time.now(), '/a')
      expect(cache.get(request('/a'))).toBeDefined()
    })

    it('onEvict returns an unsubscribe function', () => {
      const { cache, time } = setup({ maxEntries: 1 })
      const seen: string[] = []
      const off = cache.onEvict((reason, key) => { seen.push(`${reason} ${key}`) })
      put(cache, time.now(), '/a')
      put(cache, time.now(), '/b')
      off()
      put(cache, time.now(), '/c')
      expect(seen).toEqual(['capacity example.com/a'])
    })
  })
})
