import { getHeader, getRawHeader, splitTokens } from './headers.js'
import type { HeaderMap } from './types.js'

/**
 * # The cache key
 *
 * A stored response is found in two steps (RFC 9111 §4, §4.1):
 *
 * 1. **Primary key** = the request's `Host`, lower-cased, immediately followed by the
 *    request-target exactly as received (path and query, e.g. `example.com:9000/a?b=1`).
 *    - Method-independent: GET and HEAD share it, so a HEAD is answered from a stored GET.
 *    - Scheme-less: the proxy listens on one scheme; `http` is implied.
 *    - The query is part of the key, byte for byte: no decoding, no re-ordering of
 *      parameters, no case folding, no stripping of `utm_*`. `/a?x=1&y=2` and `/a?y=2&x=1`
 *      are two entries. Normalising would make two requests share a response that the
 *      origin may well answer differently.
 *    - Only origin-form targets (`/…`) and a syntactically plain host (`name[:port]` or
 *      `[v6][:port]`) get a key. A Host holding `/` could otherwise forge another URL's key
 *      (`Host: a.com/x` + `/y` = `Host: a.com` + `/x/y`); absolute-form, `*` and odd hosts
 *      are simply not cached.
 * 2. **Secondary key** (only when the stored response has `Vary`) = for each request header
 *    named in `Vary` (names lower-cased, de-duplicated, sorted), the new request's value,
 *    trimmed, repeated lines joined with ", "; an absent header is distinct from an empty
 *    one (§4.1: an absent field only matches an absent field). `Vary: *` is never stored.
 *
 * The store keeps, per primary key, a list of variants; a lookup computes the new
 * request's values for each variant's Vary names and picks the most recently stored
 * variant whose values match.
 *
 * **Unkeyed headers and cache poisoning.** Everything else in the request is unkeyed:
 * `X-Forwarded-Host`, `X-Original-URL`, `X-Rewrite-URL`, method-override headers, cookies,
 * `Authorization`. If an origin reflected one of them into a stored response, one client
 * could choose what every other client receives. Two defences: the proxy must not pass
 * client-supplied values of such headers upstream, and `evaluate()` refuses to store a
 * response to a request that still carries one (see `UNKEYED_OVERRIDE_HEADERS`) unless the
 * response lists it in `Vary`.
 */

/** Request headers that rewrite what the origin serves; see `evaluate()` in policy.ts. */
export const UNKEYED_OVERRIDE_HEADERS: readonly string[] = Object.freeze([
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override'
])

/** Host-naming headers that are harmless only when they repeat the keyed `Host`. */
export const UNKEYED_HOST_HEADERS: readonly string[] = Object.freeze([
  'x-forwarded-host',
  'x-host'
])

/** What a key is computed from: the request-target and its headers (method is not keyed). */
export interface KeyedRequest {
  readonly url: string
  readonly headers: HeaderMap
}

/** A stored variant's selecting header names and the values it was stored for. */
export interface VariantSelector {
  readonly varyNames: readonly string[]
  readonly varyValues: ReadonlyArray<string | null>
}

// reg-name / IPv4 (unreserved chars only; no `/`, `@`, spaces) or an IPv6 literal, then a port.
// In lower case, the usual Host is keyed as it is, without a lower-cased copy; HOST_RE is the
// same pattern, case-insensitive.
const LOWER_HOST_RE = /^(?:\[[0-9a-f:.]+\]|[a-z0-9._~-]+)(?::\d{1,5})?$/
const HOST_RE = new RegExp(LOWER_HOST_RE.source, 'i')

/** Primary key from an explicit host and request-target; undefined when not cacheable. */
export function primaryKeyFor (host: string, url: string): string | undefined {
  if (url.charCodeAt(0) !== 47 /* / */) return undefined
  if (LOWER_HOST_RE.test(host)) return host + url
  if (!HOST_RE.test(host)) return undefined
  return host.toLowerCase() + url
}

/** Primary key of a request (Host header + url); undefined when it must not be cached. */
export function primaryKey (req: KeyedRequest): string | undefined {
  // A repeated Host line is a smuggling smell (RFC 9112 §3.2 makes it a 400); never key it.
  const host = getRawHeader(req.headers, 'host')
  if (typeof host !== 'string') return undefined
  return primaryKeyFor(host, req.url)
}

/**
 * Normalises a response's `Vary` into sorted, lower-cased, de-duplicated field names, or
 * `'*'` when it contains `*` (RFC 9111 §4.1: always fails to match, so never stored).
 */
export function parseVary (vary: string | undefined): string[] | '*' {
  const names = splitTokens(vary).map((name) => name.toLowerCase())
  if (names.includes('*')) return '*'
  return [...new Set(names)].sort()
}

/** The request's values for the given Vary names (null = header absent). */
export function varyValues (req: KeyedRequest, names: readonly string[]): Array<string | null> {
  return names.map((name) => {
    const value = getHeader(req.headers, name)
    return value === undefined ? null : value.trim()
  })
}

/** The secondary key string of a variant (stable: names sorted by `parseVary`). */
export function secondaryKey (selector: VariantSelector): string {
  if (selector.varyNames.length === 0) return ''
  return JSON.stringify([selector.varyNames, selector.varyValues])
}

/** Whether a stored variant was stored for a request presenting the same selecting headers. */
export function variantMatches (selector: VariantSelector, req: KeyedRequest): boolean {
  const names = selector.varyNames
  for (let i = 0; i < names.length; i++) {
    const value = getHeader(req.headers, names[i]!)
    if ((value === undefined ? null : value.trim()) !== selector.varyValues[i]) return false
  }
  return true
}
