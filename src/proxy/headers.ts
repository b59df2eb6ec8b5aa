// Header handling on the way up and down (RFC 9110 §7.6). Hop-by-hop headers, and any header
// the Connection header names, belong to one connection and are never forwarded. The proxy
// adds X-Forwarded-For (appended to: a client's value is kept but never trusted as its
// address), X-Forwarded-Proto and X-Forwarded-Host (set: what the client sent there is
// replaced, unless the peer is a --trust-proxy address) and Via. Host: the target's host:port (what reply-from sets, like nginx's
// default `proxy_set_header Host $proxy_host`); the client's Host travels in X-Forwarded-Host.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http'

// RFC 9110 §7.6.1 plus the de-facto ones; `expect` and `upgrade` are also refused by undici.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings', 'expect']
const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP)

export const VIA = '1.1 zkproxy'

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
 * Request headers for the upstream (reply-from's rewriteRequestHeaders). reply-from already
 * removed Connection and the names it lists, and set Host; we finish the job. The raw path
 * builds the same fields with `upstreamHeaderList`.
 */
export function upstreamRequestHeaders (request: IncomingMessage, headers: IncomingHttpHeaders, proto: string, trustedPeer = false): IncomingHttpHeaders {
  // reply-from has already dropped the names listed in the client's Connection header.
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h]
  const client = request.socket.remoteAddress ?? 'unknown'
  const xff = headers['x-forwarded-for']
  headers['x-forwarded-for'] = typeof xff === 'string' && xff !== '' ? `${xff}, ${client}` : client
  // A trusted front proxy (--trust-proxy) knows the client's scheme and host; anyone else's
  // values are replaced, so a client cannot claim https or another site to the origin.
  if (!trustedPeer || typeof headers['x-forwarded-proto'] !== 'string') headers['x-forwarded-proto'] = proto
  if (trustedPeer && typeof headers['x-forwarded-host'] === 'string') return withVia(headers)
  const host = request.headers.host
  if (host !== undefined) headers['x-forwarded-host'] = host
  else delete headers['x-forwarded-host']
  return withVia(headers)
}

function withVia (headers: IncomingHttpHeaders): IncomingHttpHeaders {
  headers.via = appendVia(headers.via)
  return headers
}

/**
 * The raw path's request headers (fast-forward.ts), as the flat `[name, value, …]` list undici
 * takes: the same result as reply-from's rewrite followed by `upstreamRequestHeaders`, built
 * in one pass over Node's header object (so repeated fields are joined or dropped exactly as
 * Node does for the fastify path). Host is left out: undici sends the target's host:port, as
 * reply-from does.
 */
export function upstreamHeaderList (request: IncomingMessage, proto: string, trustedPeer: boolean): string[] {
  const headers = request.headers
  const named = connectionNamed(headers.connection)
  const out: string[] = []
  for (const name of Object.keys(headers)) {
    switch (name) {
      case 'host': case 'via': case 'x-forwarded-for': case 'x-forwarded-proto': case 'x-forwarded-host':
        continue
    }
    if (HOP_BY_HOP_SET.has(name) || (named.length > 0 && named.includes(name))) continue
    const value = headers[name]!
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  const client = request.socket.remoteAddress ?? 'unknown'
  const xff = kept(headers, named, 'x-forwarded-for')
  out.push('x-forwarded-for', xff !== undefined && xff !== '' ? `${xff}, ${client}` : client)
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

/**
 * The upstream's raw response header list (undici's `[name, value, …]` Buffers) as the flat
 * list Node's writeHead takes, with the same rules as `downstreamResponseHeaders`: names
 * lower-cased, hop-by-hop and Connection-named fields dropped, our Via appended.
 */
export function downstreamRawHeaders (raw: readonly Buffer[]): string[] {
  const out: string[] = []
  let named: readonly string[] | undefined
  let via: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase()
    const value = raw[i + 1]!.toString('latin1')
    if (name === 'connection') {
      named = named === undefined ? connectionNamed(value) : named.concat(connectionNamed(value))
    } else if (name === 'via') {
      via = via === undefined ? value : `${via}, ${value}`
    } else if (!HOP_BY_HOP_SET.has(name)) {
      out.push(name, value)
    }
  }
  if (named !== undefined) {
    for (let i = out.length - 2; i >= 0; i -= 2) if (named.includes(out[i]!)) out.splice(i, 2)
    if (named.includes('via')) via = undefined
  }
  out.push('via', appendVia(via))
  return out
}

/** Response headers for the client (reply-from's rewriteHeaders). */
export function downstreamResponseHeaders (headers: OutgoingHttpHeaders | IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionNamed(headers.connection)
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h]
  for (const n of named) delete headers[n]
  headers.via = appendVia(headers.via)
  return headers as OutgoingHttpHeaders
}

/**
 * A flat `[name, value, …]` list (lower-case names) as the header map undici gives the fastify
 * path: one key per name, a repeated field as an array of its values in order.
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
