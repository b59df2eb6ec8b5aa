import { getHeader, getRawHeader } from './headers.js'
import { isUnsafeMethod } from './policy.js'
import type { CacheRequest, CacheResponse } from './types.js'

/** A URL to drop from the cache: the keyed host and request-target (path + query). */
export interface InvalidationTarget {
  readonly host: string
  readonly url: string
}

/**
 * What to pass to `ResponseCache.invalidateUrl` after forwarding a request (RFC 9111 §4.4):
 * when an unsafe method gets a non-error (2xx/3xx) response, the target URI, and the URIs
 * in `Location` and `Content-Location` when they are on the same host — §4.4 forbids
 * acting on other hosts' URIs, which would let one origin flush another's entries.
 */
export function invalidationTargets (req: CacheRequest, res: CacheResponse): InvalidationTarget[] {
  if (!isUnsafeMethod(req.method) || res.status < 200 || res.status > 399) return []
  const host = getRawHeader(req.headers, 'host')
  if (typeof host !== 'string' || host === '') return []

  const targets: InvalidationTarget[] = [{ host, url: req.url }]
  let base: URL
  try {
    base = new URL(req.url, `http://${host}`)
  } catch {
    return targets
  }
  for (const name of ['location', 'content-location']) {
    const value = getHeader(res.headers, name)
    if (value === undefined) continue
    let resolved: URL
    try {
      resolved = new URL(value.trim(), base)
    } catch {
      continue
    }
    if (resolved.host !== base.host) continue
    const url = resolved.pathname + resolved.search
    if (!targets.some((t) => t.url === url)) targets.push({ host, url })
  }
  return targets
}
