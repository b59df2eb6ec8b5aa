import { createEntry } from '../../../src/cache/entry.js'
import type { CachedEntry } from '../../../src/cache/entry.js'
import { evaluate } from '../../../src/cache/policy.js'
import type { CacheRequest, HeaderMap } from '../../../src/cache/types.js'

/** A hand-driven clock: tests move time explicitly, never sleep. */
export function fakeClock (start = Date.parse('2026-01-01T00:00:00Z')): { now: () => number, advance: (ms: number) => void } {
  let current = start
  return { now: () => current, advance: (ms) => { current += ms } }
}

export function request (url: string, headers: HeaderMap = {}, method = 'GET'): CacheRequest {
  return { method, url, headers: { host: 'example.com', ...headers } }
}

/**
 * Runs a response through `evaluate` and `createEntry`, as the proxy will: the entry then
 * carries exactly the Vary data and lifetime the policy computed.
 */
export function storedEntry (
  req: CacheRequest,
  now: number,
  res: { status?: number, headers?: HeaderMap, body?: string | Buffer } = {}
): CachedEntry {
  const status = res.status ?? 200
  const headers: HeaderMap = { 'cache-control': 'max-age=60', ...res.headers }
  const decision = evaluate(req, { status, headers }, { cacheTtlSec: 3600, now })
  if (!decision.storable) throw new Error(`fixture not storable: ${decision.reason}`)
  const body = Buffer.isBuffer(res.body) ? res.body : Buffer.from(res.body ?? 'body')
  return createEntry({ req, status, headers, body, decision, now })
}
