import type { CachedEntry } from './entry.js'
import { getHeader, getRawHeader, splitOutsideQuotes } from './headers.js'
import type { HeaderMap } from './types.js'

/**
 * Conditional requests answered from a fresh stored response (RFC 9111 §4.3.2, RFC 9110
 * §13). Only GET and HEAD, and only for a stored 2xx: §13.2.1 says preconditions are
 * ignored when the unconditional answer would not be 2xx (a stored 404 stays a 404).
 *
 * Precedence (RFC 9110 §13.2.2): when `If-None-Match` is present it alone decides and
 * `If-Modified-Since` is ignored (§13.1.3), even if the entry has no ETag.
 */
export function isNotModified (req: { readonly method: string, readonly headers: HeaderMap }, entry: CachedEntry): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  if (entry.status < 200 || entry.status > 299) return false

  const ifNoneMatch = getHeader(req.headers, 'if-none-match')
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true
    if (entry.etag === undefined) return false
    const stored = opaqueTag(entry.etag)
    if (stored === undefined) return false
    // §13.1.2: If-None-Match uses the weak comparison — W/ prefixes are ignored.
    return parseEntityTags(ifNoneMatch).some((tag) => tag === stored)
  }

  const ifModifiedSince = getHeader(req.headers, 'if-modified-since')
  if (ifModifiedSince === undefined) return false
  const since = Date.parse(ifModifiedSince)
  // §13.1.3: an invalid HTTP-date, or a list of several, means the field is ignored.
  if (Number.isNaN(since)) return false
  return lastModifiedOf(entry) <= since
}

/**
 * Headers for a 304 built from a stored entry: RFC 9110 §15.4.5 asks for those a 200 would
 * carry among Cache-Control, Content-Location, Date, ETag, Expires and Vary, plus `Age`
 * for a response served from cache (RFC 9111 §5.1).
 */
export function notModifiedHeaders (entry: CachedEntry, ageSec: number): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const name of ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary']) {
    const value = getRawHeader(entry.headers, name)
    if (value !== undefined) out[name] = value
  }
  out.age = String(ageSec)
  return out
}

/**
 * §4.3.2: compare against Last-Modified; without it, the stored response's Date; without
 * that, the time it was stored.
 */
function lastModifiedOf (entry: CachedEntry): number {
  for (const value of [entry.lastModified, getHeader(entry.headers, 'date')]) {
    if (value === undefined) continue
    const parsed = Date.parse(value)
    if (!Number.isNaN(parsed)) return parsed
  }
  return entry.storedAt
}

/**
 * Parses an If-None-Match list of entity-tags into their opaque parts (without `W/` and
 * quotes). Quote-aware because an entity-tag may contain commas (RFC 9110 §8.8.3: etagc
 * allows %x2C). Malformed elements are skipped.
 */
export function parseEntityTags (value: string): string[] {
  const tags: string[] = []
  for (const element of splitOutsideQuotes(value)) {
    const tag = opaqueTag(element)
    if (tag !== undefined) tags.push(tag)
  }
  return tags
}

function opaqueTag (etag: string): string | undefined {
  const match = /^\s*(?:W\/)?"([^"]*)"\s*$/.exec(etag)
  return match?.[1]
}
