import { describe, expect, it } from 'vitest'
import { evaluate, isUnsafeMethod, requestBypassesCache } from '../../../src/cache/policy.js'
import type { Decision, EvaluateOptions } from '../../../src/cache/policy.js'
import type { HeaderMap } from '../../../src/cache/types.js'

// A fixed clock; `Date` headers are written relative to it so freshness is exact.
const NOW = Date.parse('2026-01-01T00:00:00Z')
const at = (offsetSec: number): string => new Date(NOW + offsetSec * 1000).toUTCString()
const DAY = 24 * 3600

interface Case {
  title: string
  method?: string
  reqHeaders?: HeaderMap
  status?: number
  resHeaders: HeaderMap
  opts?: Partial<EvaluateOptions>
  expected: Partial<Decision> & { storable: boolean }
}

function run (c: Pick<Case, 'method' | 'reqHeaders' | 'status' | 'resHeaders' | 'opts'>): Decision {
  return evaluate(
    { method: c.method ?? 'GET', url: '/page?x=1', headers: { host: 'example.com', ...c.reqHeaders } },
    { status: c.status ?? 200, headers: { date: at(0), ...c.resHeaders } },
    { cacheTtlSec: 120, now: NOW, ...c.opts }
  )
}

const cases: Case[] = [
  // Freshness: explicit lifetimes and their precedence (RFC 9111 §4.2.1).
  { title: 'public, max-age=60', resHeaders: { 'cache-control': 'public, max-age=60' }, expected: { storable: true, ttlMs: 60_000, freshness: 'explicit' } },
  { title: 's-maxage beats max-age in a shared cache', resHeaders: { 'cache-control': 'max-age=100, s-maxage=30' }, expected: { storable: true, ttlMs: 30_000 } },
  { title: 's-maxage beats Expires', resHeaders: { 'cache-control': 's-maxage=30', expires: at(90) }, expected: { storable: true, ttlMs: 30_000 } },
  { title: 'max-age beats Expires', resHeaders: { 'cache-control': 'max-age=40', expires: at(90) }, expected: { storable: true, ttlMs: 40_000 } },
  { title: 'Expires − Date', resHeaders: { expires: at(90) }, expected: { storable: true, ttlMs: 90_000, freshness: 'explicit' } },
  { title: 'cache-ttl caps a longer lifetime', resHeaders: { 'cache-control': 'max-age=3600' }, expected: { storable: true, ttlMs: 120_000 } },
  { title: 'Expires in the past = stale', resHeaders: { expires: at(-10) }, expected: { storable: false, reason: 'stale' } },
  { title: 'Expires invalid = stale', resHeaders: { expires: 'not a date' }, expected: { storable: false, reason: 'stale' } },
  { title: 'Expires "0" = stale', resHeaders: { expires: '0' }, expected: { storable: false, reason: 'stale' } },
  { title: 'Expires empty = stale', resHeaders: { expires: '' }, expected: { storable: false, reason: 'stale' } },
  { title: 'max-age=0 = stale', resHeaders: { 'cache-control': 'max-age=0' }, expected: { storable: false, reason: 'stale' } },
  { title: 'malformed max-age = stale', resHeaders: { 'cache-control': 'max-age=12abc' }, expected: { storable: false, reason: 'stale' } },
  { title: 'conflicting max-age = stale (§4.2.1)', resHeaders: { 'cache-control': 'max-age=60, max-age=0' }, expected: { storable: false, reason: 'stale' } },
  { title: 'upstream Age counts against the lifetime', resHeaders: { 'cache-control': 'max-age=120', age: '100' }, expected: { storable: true, ttlMs: 20_000, ageSec: 100 } },
  { title: 'Age as a list is invalid and ignored (§5.1)', resHeaders: { 'cache-control': 'max-age=120', age: '100, 5' }, expected: { storable: true, ttlMs: 120_000, ageSec: 0 } },
  { title: 'Age that is not a non-negative integer is ignored (§5.1)', resHeaders: { 'cache-control': 'max-age=120', age: '-5' }, expected: { storable: true, ttlMs: 120_000, ageSec: 0 } },
  { title: 'Age with a fraction is ignored (§5.1)', resHeaders: { 'cache-control': 'max-age=120', age: '10.5' }, expected: { storable: true, ttlMs: 120_000, ageSec: 0 } },
  { title: 'repeated Expires lines = stale (§5.3)', resHeaders: { expires: [at(90), at(90)] }, expected: { storable: false, reason: 'stale' } },
  { title: 'Age beyond max-age = stale', resHeaders: { 'cache-control': 'max-age=60', age: '60' }, expected: { storable: false, reason: 'stale' } },
  { title: 'directive names are case-insensitive', resHeaders: { 'cache-control': 'Public, Max-Age=50' }, expected: { storable: true, ttlMs: 50_000 } },
  { title: 'Cache-Control given as repeated lines', resHeaders: { 'cache-control': ['public', 'max-age=45'] }, expected: { storable: true, ttlMs: 45_000 } },
  { title: 'immutable without max-age adds no lifetime', resHeaders: { 'cache-control': 'immutable' }, expected: { storable: false, reason: 'no-freshness' } },
  { title: 'quoted extension cannot smuggle a max-age', resHeaders: { 'cache-control': 'max-age=10, ext="a, max-age=999"' }, expected: { storable: true, ttlMs: 10_000 } },

  // Heuristic freshness (§4.2.2) and the operator's default.
  { title: 'heuristic: 10% of Date − Last-Modified', resHeaders: { 'last-modified': at(-1000) }, expected: { storable: true, ttlMs: 100_000, freshness: 'heuristic' } },
  { title: 'heuristic capped by cache-ttl', resHeaders: { 'last-modified': at(-10 * DAY) }, expected: { storable: true, ttlMs: 120_000, freshness: 'heuristic' } },
  { title: 'heuristic for a 404', status: 404, resHeaders: { 'last-modified': at(-500) }, expected: { storable: true, ttlMs: 50_000 } },
  { title: 'no freshness at all: not stored', resHeaders: {}, expected: { storable: false, reason: 'no-freshness' } },
  { title: 'Last-Modified after Date gives no heuristic', resHeaders: { 'last-modified': at(10) }, expected: { storable: false, reason: 'no-freshness' } },
  { title: 'defaultTtl without explicit freshness', resHeaders: {}, opts: { defaultTtlSec: 30 }, expected: { storable: true, ttlMs: 30_000, freshness: 'default' } },
  { title: 'defaultTtl is capped by cache-ttl', resHeaders: {}, opts: { defaultTtlSec: 600 }, expected: { storable: true, ttlMs: 120_000, freshness: 'default' } },
  { title: 'defaultTtl when the heuristic gives nothing', resHeaders: { 'last-modified': at(10) }, opts: { defaultTtlSec: 30 }, expected: { storable: true, ttlMs: 30_000, freshness: 'default' } },
  { title: 'heuristic preferred over defaultTtl', resHeaders: { 'last-modified': at(-200) }, opts: { defaultTtlSec: 30 }, expected: { storable: true, ttlMs: 20_000, freshness: 'heuristic' } },
  { title: 'defaultTtl never overrides explicit max-age', resHeaders: { 'cache-control': 'max-age=10' }, opts: { defaultTtlSec: 60 }, expected: { storable: true, ttlMs: 10_000, freshness: 'explicit' } },
  { title: 'defaultTtl never revives max-age=0', resHeaders: { 'cache-control': 'max-age=0' }, opts: { defaultTtlSec: 60 }, expected: { storable: false, reason: 'stale' } },
  { title: 'defaultTtl never revives a past Expires', resHeaders: { expires: at(-1) }, opts: { defaultTtlSec: 60 }, expected: { storable: false, reason: 'stale' } },
  { title: 'defaultTtl never overrides no-store', resHeaders: { 'cache-control': 'no-store' }, opts: { defaultTtlSec: 60 }, expected: { storable: false, reason: 'no-store' } },
  { title: 'defaultTtl never overrides private', resHeaders: { 'cache-control': 'private' }, opts: { defaultTtlSec: 60 }, expected: { storable: false, reason: 'private' } },

  // Directives that forbid storing (§3, §5.2.2).
  { title: 'no-store', resHeaders: { 'cache-control': 'public, max-age=60, no-store' }, expected: { storable: false, reason: 'no-store' } },
  { title: 'private', resHeaders: { 'cache-control': 'private, max-age=60' }, expected: { storable: false, reason: 'private' } },
  { title: 'qualified private="set-cookie"', resHeaders: { 'cache-control': 'private="set-cookie, x-a", max-age=60' }, expected: { storable: false, reason: 'private' } },
  { title: 'no-cache: not stored (we never revalidate)', resHeaders: { 'cache-control': 'no-cache, max-age=60' }, expected: { storable: false, reason: 'no-cache' } },
  { title: 'qualified no-cache="set-cookie"', resHeaders: { 'cache-control': 'no-cache="set-cookie", max-age=60' }, expected: { storable: false, reason: 'no-cache' } },
  { title: 'response Pragma: no-cache without Cache-Control', resHeaders: { pragma: 'no-cache', expires: at(60) }, expected: { storable: false, reason: 'no-cache' } },
  { title: 'response Pragma ignored when Cache-Control present', resHeaders: { pragma: 'no-cache', 'cache-control': 'max-age=60' }, expected: { storable: true, ttlMs: 60_000 } },
  { title: 'Set-Cookie never stored, even public', resHeaders: { 'cache-control': 'public, max-age=60', 'set-cookie': ['a=1'] }, expected: { storable: false, reason: 'set-cookie' } },
  { title: 'Vary: * never stored', resHeaders: { 'cache-control': 'max-age=60', vary: '*' }, expected: { storable: false, reason: 'vary-star' } },
  { title: 'Vary with * among names', resHeaders: { 'cache-control': 'max-age=60', vary: 'Accept-Encoding, *' }, expected: { storable: false, reason: 'vary-star' } },

  // Authorization (§3.5).
  { title: 'Authorization without public: not stored', reqHeaders: { authorization: 'Bearer x' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'authorization' } },
  { title: 'Authorization + public: stored', reqHeaders: { authorization: 'Bearer x' }, resHeaders: { 'cache-control': 'public, max-age=60' }, expected: { storable: true, ttlMs: 60_000 } },
  { title: 'Authorization + s-maxage: stored', reqHeaders: { authorization: 'Bearer x' }, resHeaders: { 'cache-control': 's-maxage=60' }, expected: { storable: true, ttlMs: 60_000 } },
  { title: 'Authorization + must-revalidate only: not stored (stricter than §3.5)', reqHeaders: { authorization: 'Bearer x' }, resHeaders: { 'cache-control': 'must-revalidate, max-age=60' }, expected: { storable: false, reason: 'authorization' } },

  // Statuses and methods.
  ...[200, 203, 204, 300, 301, 404, 410].map((status): Case => ({ title: `status ${status} stored`, status, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: true, ttlMs: 60_000 } })),
  ...[201, 206, 302, 304, 307, 308, 500, 503].map((status): Case => ({ title: `status ${status} not stored`, status, resHeaders: { 'cache-control': 'public, max-age=60' }, expected: { storable: false, reason: 'status' } })),
  { title: 'HEAD response not stored', method: 'HEAD', resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'method' } },
  { title: 'POST response not stored', method: 'POST', resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'method' } },
  { title: 'cache-ttl 0 turns the cache off', resHeaders: { 'cache-control': 'max-age=60' }, opts: { cacheTtlSec: 0 }, expected: { storable: false, reason: 'cache-off' } },
  { title: 'request no-store', reqHeaders: { 'cache-control': 'no-store' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'request-no-store' } },
  { title: 'request no-cache still stores the fresh response', reqHeaders: { 'cache-control': 'no-cache' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: true, ttlMs: 60_000 } },

  // Keys and unkeyed headers (cache poisoning).
  { title: 'Host with a slash gets no key', reqHeaders: { host: 'a.com/x' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'no-key' } },
  { title: 'X-Original-URL present: not stored', reqHeaders: { 'x-original-url': '/admin' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'unkeyed-header' } },
  { title: 'X-Original-URL keyed by Vary: stored', reqHeaders: { 'x-original-url': '/admin' }, resHeaders: { 'cache-control': 'max-age=60', vary: 'X-Original-URL' }, expected: { storable: true, varyNames: ['x-original-url'] } },
  { title: 'X-Forwarded-Host differing from Host: not stored', reqHeaders: { 'x-forwarded-host': 'evil.example' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: false, reason: 'unkeyed-header' } },
  { title: 'X-Forwarded-Host equal to Host: stored', reqHeaders: { 'x-forwarded-host': 'Example.com' }, resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: true } },

  // Data the store needs later.
  { title: 'Vary names normalised', resHeaders: { 'cache-control': 'max-age=60', vary: 'Accept-Language, accept-encoding ,ACCEPT-ENCODING' }, expected: { storable: true, varyNames: ['accept-encoding', 'accept-language'] } },
  { title: 'validators kept', resHeaders: { 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': at(-100) }, expected: { storable: true, etag: '"v1"', lastModified: at(-100) } },
  { title: 'may serve stale by default', resHeaders: { 'cache-control': 'max-age=60' }, expected: { storable: true, mayServeStale: true } },
  { title: 'stale-while-revalidate=30 (RFC 5861 §3): a 30 s window', resHeaders: { 'cache-control': 'max-age=60, stale-while-revalidate=30' }, expected: { storable: true, staleWhileRevalidateMs: 30_000 } },
  { title: 'stale-while-revalidate is bounded by --cache-ttl', resHeaders: { 'cache-control': 'max-age=60, stale-while-revalidate=86400' }, expected: { storable: true, staleWhileRevalidateMs: 120_000 } },
  { title: 'stale-while-revalidate: malformed or with must-revalidate, none', resHeaders: { 'cache-control': 'max-age=60, must-revalidate, stale-while-revalidate=30' }, expected: { storable: true, staleWhileRevalidateMs: 0 } },
  { title: 'stale-while-revalidate without a number: none', resHeaders: { 'cache-control': 'max-age=60, stale-while-revalidate' }, expected: { storable: true, staleWhileRevalidateMs: 0 } },
  { title: 'must-revalidate: fresh, but never served stale', resHeaders: { 'cache-control': 'max-age=60, must-revalidate' }, expected: { storable: true, ttlMs: 60_000, mayServeStale: false } },
  { title: 'proxy-revalidate: fresh for max-age, never stale', resHeaders: { 'cache-control': 'max-age=60, proxy-revalidate' }, expected: { storable: true, ttlMs: 60_000, mayServeStale: false } },
  { title: 's-maxage implies proxy-revalidate (§5.2.2.10)', resHeaders: { 'cache-control': 's-maxage=60' }, expected: { storable: true, mayServeStale: false } }
]

describe('evaluate (RFC 9111, shared cache)', () => {
  it.each(cases)('$title', (c) => {
    expect(run(c)).toMatchObject(c.expected)
  })

  it('without a Date header, Expires is measured from the injected clock', () => {
    const decision = evaluate(
      { method: 'GET', url: '/', headers: { host: 'example.com' } },
      { status: 200, headers: { expires: at(30) } },
      { cacheTtlSec: 120, now: NOW }
    )
    expect(decision).toMatchObject({ storable: true, ttlMs: 30_000 })
  })

  it('reads mixed-case header names', () => {
    const decision = evaluate(
      { method: 'GET', url: '/', headers: { Host: 'example.com' } },
      { status: 200, headers: { 'Cache-Control': 'max-age=60', Vary: 'Accept' } },
      { cacheTtlSec: 120, now: NOW }
    )
    expect(decision).toMatchObject({ storable: true, ttlMs: 60_000, varyNames: ['accept'] })
  })
})

describe('requestBypassesCache', () => {
  it.each([
    { headers: {}, expected: false },
    { headers: { 'cache-control': 'no-cache' }, expected: true },
    { headers: { 'cache-control': 'No-Store' }, expected: true },
    { headers: { 'cache-control': 'max-age=0' }, expected: false },
    { headers: { 'cache-control': 'max-stale=10' }, expected: false },
    { headers: { pragma: 'no-cache' }, expected: true },
    { headers: { pragma: 'no-cache', 'cache-control': 'max-age=10' }, expected: false }
  ])('$headers → $expected', ({ headers, expected }) => {
    expect(requestBypassesCache({ headers })).toBe(expected)
  })
})

describe('isUnsafeMethod (RFC 9111 §4.4)', () => {
  it.each(['POST', 'PUT', 'DELETE', 'PATCH', 'PURGE', 'get'])('%s is unsafe', (method) => {
    expect(isUnsafeMethod(method)).toBe(true)
  })
  it.each(['GET', 'HEAD', 'OPTIONS', 'TRACE'])('%s is safe', (method) => {
    expect(isUnsafeMethod(method)).toBe(false)
  })
})
