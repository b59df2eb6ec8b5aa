// Header handling on the way up and down (RFC 9110 §7.6). Hop-by-hop headers, and any header
// the Connection header names, belong to one connection and are never forwarded. The proxy
// adds X-Forwarded-For (appended to: a client's value is kept but never trusted as its
// address), X-Forwarded-Proto and X-Forwarded-Host (set: what the client sent there is
// replaced, unless the peer is a --trust-proxy address) and Via. Host: the target's host:port (what reply-from sets, like nginx's
// default `proxy_set_header Host $proxy_host`); the client's Host travels in X-Forwarded-Host.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import type { FastifyRequest } from 'fastify'

// RFC 9110 §7.6.1 plus the de-facto ones; `expect` and `upgrade` are also refused by undici.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate', 'http2-settings', 'expect']

export const VIA = '1.1 zkproxy'

function connectionNamed (value: unknown): string[] {
  if (typeof value !== 'string' || value === '') return []
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
 * removed Connection and the names it lists, and set Host; we finish the job.
 */
export function upstreamRequestHeaders (request: FastifyRequest, headers: IncomingHttpHeaders, proto: string, trustedPeer = false): IncomingHttpHeaders {
  // reply-from has already dropped the names listed in the client's Connection header.
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h]
  const client = request.raw.socket.remoteAddress ?? 'unknown'
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

/** Response headers for the client (reply-from's rewriteHeaders). */
export function downstreamResponseHeaders (headers: OutgoingHttpHeaders | IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = connectionNamed(headers.connection)
  for (const h of HOP_BY_HOP) if (headers[h] !== undefined) delete headers[h]
  for (const n of named) delete headers[n]
  headers.via = appendVia(headers.via)
  return headers as OutgoingHttpHeaders
}
