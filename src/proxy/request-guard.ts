// Request shapes Node's parser accepts but a proxy must not pass on (measured on Node 20: its
// parser already rejects CL+TE, duplicate Content-Length, obs-fold, bare LF and oversized
// headers). Each gets an explicit answer here, checked once per request before routing, so a
// backend that parses differently never sees an ambiguous message (request smuggling, path
// confusion). Cheap by design: a scan of the raw header list and of the path.
import type { IncomingMessage } from 'node:http'

export interface Rejection {
  readonly code: 'ZKPROXY_ERR_PROXY_BAD_REQUEST' | 'ZKPROXY_ERR_PROXY_NOT_IMPLEMENTED' | 'ZKPROXY_ERR_PROXY_TOO_MANY_HEADERS'
  readonly message: string
}

/**
 * Header fields accepted per request (HAProxy's tune.http.maxhdr is 101 with the request
 * line). Node has no such error: past server.maxHeadersCount (~1000 here) it drops the rest
 * silently, and --max-header-bytes counts names and values only, so 16 KiB holds thousands of
 * tiny fields. A request at or past Node's cap may have lost fields: refuse it whole (431).
 */
export const MAX_HEADER_FIELDS = 100

const DUPLICATE_HOST: Rejection = { code: 'ZKPROXY_ERR_PROXY_BAD_REQUEST', message: 'more than one Host header (RFC 9112 §3.2)' }
const TE_ON_HTTP10: Rejection = { code: 'ZKPROXY_ERR_PROXY_BAD_REQUEST', message: 'Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)' }
const TE_NOT_CHUNKED: Rejection = { code: 'ZKPROXY_ERR_PROXY_NOT_IMPLEMENTED', message: 'only Transfer-Encoding: chunked is supported (RFC 9112 §6.1)' }
const DOT_SEGMENT: Rejection = { code: 'ZKPROXY_ERR_PROXY_BAD_REQUEST', message: 'dot-segments ("." or "..") in the path are refused' }
const BACKSLASH: Rejection = { code: 'ZKPROXY_ERR_PROXY_BAD_REQUEST', message: 'a backslash in the path (RFC 3986 allows none; "/\\host" reads as "//host" to some parsers)' }
const BAD_HOST: Rejection = { code: 'ZKPROXY_ERR_PROXY_BAD_REQUEST', message: 'invalid Host (RFC 9112 §3.2: uri-host [":" port], no userinfo, path or spaces)' }
const TOO_MANY_HEADERS: Rejection = { code: 'ZKPROXY_ERR_PROXY_TOO_MANY_HEADERS', message: `more than ${MAX_HEADER_FIELDS} header fields` }

export function checkRequest (req: IncomingMessage): Rejection | undefined {
  const raw = req.rawHeaders
  if (raw.length > 2 * MAX_HEADER_FIELDS) return TOO_MANY_HEADERS
  let hosts = 0
  let host: string | undefined
  let te: string | undefined
  // One pass over the raw list (not req.headers: Node builds that object on first use).
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === 4) {
      // Spelled "Host" by nearly every client: compared as is before a lower-cased copy is made.
      if (name === 'Host' || name === 'host' || name.toLowerCase() === 'host') {
        hosts++
        host = raw[i + 1]!
      }
    } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') {
      // Node joins repeated lines with ", ", and so does this.
      te = te === undefined ? raw[i + 1]! : `${te}, ${raw[i + 1]!}`
    }
  }
  if (hosts > 1) return DUPLICATE_HOST
  if (host !== undefined && !validHost(host)) return BAD_HOST
  if (te !== undefined) {
    if (req.httpVersionMinor === 0 && req.httpVersionMajor === 1) return TE_ON_HTTP10
    // Node de-chunks "gzip, chunked" and would hand us a still-gzipped body with no header
    // saying so once hop-by-hop Transfer-Encoding is stripped: refuse codings we cannot pass.
    if (te.trim().toLowerCase() !== 'chunked') return TE_NOT_CHUNKED
  }
  const url = req.url ?? '/'
  // In the path only: browsers send a raw backslash in query strings (WHATWG URL leaves it).
  const backslash = url.indexOf('\\')
  if (backslash !== -1 && !url.slice(0, backslash).includes('?')) return BACKSLASH
  if (hasDotSegment(url)) return DOT_SEGMENT
  return undefined
}

/**
 * RFC 9112 §3.2 / RFC 3986 §3.2.2: an IP literal in brackets or a reg-name (unreserved,
 * pct-encoded, sub-delims), then an optional port of up to five digits (≤ 65535). An empty
 * Host (allowed for some request forms) passes; userinfo ("user@"), a path or a space does not.
 */
export function validHost (host: string): boolean {
  const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::(\d{0,5}))?$/.exec(host)
  if (m === null) return false
  return m[1] === undefined || m[1] === '' || Number(m[1]) <= 65535
}

/** True for "/./", "/../", a trailing "/." or "/..", also percent-encoded (%2e). */
export function hasDotSegment (url: string): boolean {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  // Fast path: no '.' and no '%' means no dot-segment in any spelling.
  if (path.indexOf('.') === -1 && path.indexOf('%') === -1) return false
  const decoded = path.replace(/%2e/gi, '.')
  for (const seg of decoded.split(/[/\\]|%2f|%5c/i)) {
    if (seg === '.' || seg === '..') return true
  }
  return false
}

/**
 * Absolute-form request targets (`GET http://other:81/x`) are served as their path and query
 * only (RFC 9112 §3.2.2 says a server must accept the form): the target always comes from the
 * registry, so the proxy never becomes an open proxy. Leading "//" is merged into "/" so that
 * a backend cannot read the path as a network-path reference ("//evil.example/...").
 */
export function normalizeRequestTarget (url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) {
    if (url.charCodeAt(1) !== 47) return url
    return url.replace(/^\/+/, '/')
  }
  if (url === '*') return url // OPTIONS * (asterisk-form)
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^#]*)/i.exec(url)
  if (m === null) return url
  const rest = m[1] ?? ''
  return rest === '' ? '/' : rest.startsWith('/') ? rest.replace(/^\/+/, '/') : `/${rest}`
}
