/**
 * Transport-independent shapes the cache core works on. They match what Node's
 * `IncomingMessage` and undici hand out, so the proxy passes its objects through without
 * copying; header names are expected lower-case (as Node gives them) but every reader in
 * this folder also finds mixed-case names.
 */

/** Header map: a repeated field is either joined by the transport or given as an array. */
export type HeaderMap = Record<string, string | string[] | undefined>

/** A downstream request as the cache sees it: `url` is the request-target in origin-form. */
export interface CacheRequest {
  readonly method: string
  readonly url: string
  readonly headers: HeaderMap
}

/** An upstream response's metadata; the body travels separately. */
export interface CacheResponse {
  readonly status: number
  readonly headers: HeaderMap
}
