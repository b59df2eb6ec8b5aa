// Header handling on the way up and down (RFC 9110 §7.6). Hop-by-hop headers, and any header
// the Connection header names, belong to one connection and are never forwarded. The proxy
// adds X-Forwarded-For (appended to: a client's value is kept but never trusted as its
// address), X-Forwarded-Proto and X-Forwarded-Host (set: what the client sent there is
// replaced, unless the peer is a --trust-proxy address) and Via. Host: the client's, unchanged
// (as Traefik and Caddy do: virtual hosts, absolute redirects and cookies keep working), or with
// --upstream-host target the target's own host:port (nginx's default); X-Forwarded-Host carries
// the client's Host either way. Every other forwarding or identity field is stripped unless the
// peer is trusted, and underscore spellings always (STRIPPED_FORWARDING; docs/cache.md).
import type { IncomingHttpHeaders } from 'node:http'

// RFC 9110 §7.6.1 plus the de-facto ones; `expect` and `upgrade` are also refused by undici.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings', 'expect']
const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP)

export const VIA = '1.1 zkproxy'

/**
 * Forwarding and client-identity fields other than the X-Forwarded-For/-Proto/-Host the proxy
 * sets itself. Frameworks honour them (Rack: X-Forwarded-Scheme/-Port/-Ssl; Spring and Express:
 * Forwarded, X-Forwarded-Prefix/-Port; Symfony and many PHP apps: X-Forwarded-Port/-Prefix,
 * X-Original-Host; logging and rate limits: X-Real-IP and the *-Client-IP family), and none is
 * part of the cache key, so a client's value could choose what the origin builds into a page
 * every other client is then served from the cache. They are stripped, unless the peer is a
 * --trust-proxy address (a front proxy that sets them for every client alike). X-Forwarded-For
 * (appended to), X-Forwarded-Proto and X-Forwarded-Host (replaced) carry what the origin needs.
 * Fields with an underscore in their name are dropped whoever sends them (nginx's default):
 * CGI, WSGI and PHP turn `X_Forwarded_Host` into the same variable as `X-Forwarded-Host`.
 */
export const STRIPPED_FORWARDING: ReadonlySet<string> = new Set([
  'forwarded',
  'x-forwarded-scheme', 'x-forwarded-ssl', 'x-forwarded-protocol', 'x-url-scheme', 'front-end-https',
  'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-path', 'x-forwarded-uri',
  'x-original-host', 'x-host', 'x-forwarded-server-host',
  'x-real-ip', 'x-client-ip', 'true-client-ip', 'x-cluster-client-ip', 'client-ip', 'cf-connecting-ip', 'fastly-client-ip'
])

const NONE: readonly string[] = Object.freeze([])

function connectionNamed (value: unknown): readonly string[] {
  // Repeated Connection lines arrive as an array from undici: each names fields too.
  if (Array.isArray(value)) return value.flatMap(connectionNamed)
  // Most requests and responses name nothing: no array per message for them.
  if (typeof value !== 'string' || value === '') return NONE
  const names: string[] = []
  for (const part of value.split(',')) {
    const n = part.trim().toLowerCase()
    if (n !== '') names.push(n)
  }
  return names
}

function appendVia (existing: unknown): string {
  if (typeof existing === 'string' && existing !== '') return `${existing}, ${VIA}`
  if (Array.isArray(existing) && existing.length > 0) return `${existing.join(', ')}, ${VIA}`
  return VIA
}

/**
 * The request's header fields for the upstream, as the flat `[name, value, …]` list undici
 * takes, built in one pass over Node's header object (repeated fields joined or kept exactly as
 * Node does). `client` is the downstream peer's address, taken when the request arrived (a
 * client that resets after sending has no socket address any more). With `passHost` the
 * client's Host goes first; without it, undici sends the target's host:port.
 */
export function upstreamHeaderList (headers: IncomingHttpHeaders, client: string, proto: string, trustedPeer: boolean, passHost = false): string[] {
  const named = connectionNamed(headers.connection)
  const out: string[] = []
  if (passHost && headers.host !== undefined) out.push('host', headers.host)
  for (const name of Object.keys(headers)) {
    switch (name) {
      case 'host': case 'via': case 'x-forwarded-for': case 'x-forwarded-proto': case 'x-forwarded-host':
        continue
    }
    if (HOP_BY_HOP_SET.has(name) || (named.length > 0 && named.includes(name))) continue
    if (name.includes('_') || (!trustedPeer && STRIPPED_FORWARDING.has(name))) continue
    const value = headers[name]!
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  const xff = kept(headers, named, 'x-forwarded-for')
  out.push('x-forwarded-for', xff !== undefined && xff !== '' ? `${xff}, ${client}` : client)
  // A trusted front proxy (--trust-proxy) knows the client's scheme and host; anyone else's
  // values are replaced, so a client cannot claim https or another site to the origin.
  const xfp = trustedPeer ? kept(headers, named, 'x-forwarded-proto') : undefined
  out.push('x-forwarded-proto', xfp ?? proto)
  const xfh = trustedPeer ? kept(headers, named, 'x-forwarded-host') : undefined
  const host = xfh ?? headers.host
  if (host !== undefined) out.push('x-forwarded-host', host)
  out.push('via', appendVia(kept(headers, named, 'via')))
  return out
}

/** A field the proxy rewrites, as the client sent it, unless the Connection header named it. */
function kept (headers: IncomingHttpHeaders, named: readonly string[], name: string): string | undefined {
  const v = headers[name]
  return typeof v === 'string' && !named.includes(name) ? v : undefined
}

/** A response header map as undici's handler API gives it: lower-case names, repeats as arrays. */
export type ResponseHeaders = Record<string, string | string[] | undefined>

/**
 * The upstream's response header fields as the flat list Node's writeHead takes: hop-by-hop
 * and Connection-named fields dropped, our Via appended.
 */
export function downstreamFields (headers: ResponseHeaders): string[] {
  const named = connectionNamed(headers['connection'])
  const out: string[] = []
  for (const name of Object.keys(headers)) {
    if (name === 'via' || HOP_BY_HOP_SET.has(name) || (named.length > 0 && named.includes(name))) continue
    const value = headers[name]
    if (typeof value === 'string') out.push(name, value)
    else if (value !== undefined) for (const v of value) out.push(name, v)
  }
  out.push('via', appendVia(named.includes('via') ? undefined : headers['via']))
  return out
}

/**
 * A flat `[name, value, …]` list (lower-case names) as a header map: one key per name, a
 * repeated field as an array of its values in order.
 */
export function fieldMap (fields: readonly string[]): Record<string, string | string[]> {
  // No prototype: a field named `constructor` or `__proto__` is a field like any other.
  const map: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!
    const value = fields[i + 1]!
    const seen = map[name]
    if (seen === undefined) map[name] = value
    else if (Array.isArray(seen)) seen.push(value)
    else map[name] = [seen, value]
  }
  return map
}

/** Sets `name` in a flat list (lower-case names): every line of it is replaced by one. */
export function setField (fields: string[], name: string, value: string): void {
  for (let i = fields.length - 2; i >= 0; i -= 2) if (fields[i] === name) fields.splice(i, 2)
  fields.push(name, value)
}

/**
 * Request-targets passed on byte for byte: RFC 3986 path and query characters only. Anything
 * else is percent-encoded on the way: the path as WHATWG URL does (so `{` becomes `%7B`), the
 * query only where undici would refuse the byte (controls, space, non-ASCII), keeping what a
 * browser sends raw there as sent.
 */
const PLAIN_TARGET = /^[\w\-.~!$&'()*+,;=:@/?%]*$/

export function upstreamTarget (url: string): string {
  if (PLAIN_TARGET.test(url)) return url
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const query = q === -1 ? '' : url.slice(q)
  // The base is never seen: only the path of the parsed URL is kept.
  const encodedPath = new URL(path.replace(/#/g, '%23'), 'http://h').pathname
  return encodedPath + query.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c))
}
