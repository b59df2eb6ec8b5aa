// The one error catalogue (after fastify's lib/errors.js). Every error zkproxy raises has a
// stable `code`; callers match on `err.code`, never on `instanceof` or message text (undici's
// advice: class identity breaks across duplicated module copies). HTTP-facing codes carry the
// status they answer with. docs/errors.md documents every code; a unit test keeps both in step.

export interface ErrorSpec {
  readonly message: string
  readonly statusCode?: number
  /** The short token in HTTP error bodies: {"error":"no_targets","code":...,"message":...}. */
  readonly error?: string
}

export const errorCatalogue = {
  // ZooKeeper result codes, translated once at the boundary (src/zk/errors.ts).
  ZKPROXY_ERR_ZK_NO_NODE: { message: 'znode does not exist' },
  ZKPROXY_ERR_ZK_NODE_EXISTS: { message: 'znode already exists' },
  ZKPROXY_ERR_ZK_BAD_VERSION: { message: 'znode version changed (compare-and-set conflict)' },
  ZKPROXY_ERR_ZK_NOT_EMPTY: { message: 'znode has children' },
  ZKPROXY_ERR_ZK_NO_AUTH: { message: 'not authorised for this znode (ACL)' },
  ZKPROXY_ERR_ZK_AUTH_FAILED: { message: 'ZooKeeper authentication failed' },
  ZKPROXY_ERR_ZK_CONNECTION_LOSS: { message: 'no connection to ZooKeeper (the operation may or may not have been applied)' },
  ZKPROXY_ERR_ZK_SESSION_EXPIRED: { message: 'ZooKeeper session expired' },
  ZKPROXY_ERR_ZK_CLOSED: { message: 'ZooKeeper client is closed' },
  ZKPROXY_ERR_ZK_BAD_ARGUMENTS: { message: 'ZooKeeper rejected the arguments' },
  ZKPROXY_ERR_ZK_UNKNOWN: { message: 'ZooKeeper error' },

  // Configuration: flags and environment (exit code 2).
  ZKPROXY_ERR_CONFIG_INVALID: { message: 'invalid configuration' },

  // The public listener.
  ZKPROXY_ERR_PROXY_NO_TARGETS: { message: 'no live target is registered', statusCode: 503, error: 'no_targets' },
  ZKPROXY_ERR_PROXY_NO_ROUTE: { message: 'no route matches the request and no target serves the default pool', statusCode: 404, error: 'no_route' },
  ZKPROXY_ERR_PROXY_UPSTREAM_FAILED: { message: 'every attempt to reach a target failed', statusCode: 502, error: 'upstream_failed' },
  ZKPROXY_ERR_PROXY_UPSTREAM_TIMEOUT: { message: 'the target did not answer in time', statusCode: 504, error: 'upstream_timeout' },
  ZKPROXY_ERR_PROXY_BAD_REQUEST: { message: 'malformed or ambiguous request', statusCode: 400, error: 'bad_request' },
  ZKPROXY_ERR_PROXY_NOT_IMPLEMENTED: { message: 'request feature not supported', statusCode: 501, error: 'not_implemented' },
  ZKPROXY_ERR_PROXY_BODY_TOO_LARGE: { message: 'request body too large', statusCode: 413, error: 'body_too_large' },
  ZKPROXY_ERR_PROXY_TOO_MANY_HEADERS: { message: 'too many request header fields', statusCode: 431, error: 'too_many_headers' },
  ZKPROXY_ERR_PROXY_METHOD_NOT_ALLOWED: { message: 'method not forwarded', statusCode: 405, error: 'method_not_allowed' },
  ZKPROXY_ERR_PROXY_TOO_MANY_TUNNELS: { message: 'too many open tunnels', statusCode: 503, error: 'too_many_tunnels' },
  ZKPROXY_ERR_PROXY_TOO_MANY_REQUESTS: { message: 'too many concurrent requests from this client address', statusCode: 429, error: 'too_many_requests' },
  ZKPROXY_ERR_PROXY_UPSTREAM_BUSY: { message: 'every connection to the target is busy and its wait queue is full', statusCode: 503, error: 'upstream_busy' },
  ZKPROXY_ERR_PROXY_UPSTREAM_QUEUE_TIMEOUT: { message: 'no connection to the target became free in time', statusCode: 504, error: 'upstream_queue_timeout' },
  ZKPROXY_ERR_PROXY_SHUTTING_DOWN: { message: 'the proxy is shutting down', statusCode: 503, error: 'shutting_down' },
  ZKPROXY_ERR_PROXY_INTERNAL: { message: 'internal error', statusCode: 500, error: 'internal_error' },
  ZKPROXY_ERR_PROXY_LISTEN: { message: 'cannot listen on the requested address' },
  ZKPROXY_ERR_PROXY_WORKER_START: { message: 'a worker process exited while starting' },

  // The response cache.
  ZKPROXY_ERR_CACHE_COALESCE_TIMEOUT: { message: 'timed out waiting for a coalesced upstream response' },

  // Replicas and the register sidecar.
  ZKPROXY_ERR_REPLICA_LISTEN: { message: 'cannot listen on the requested address' },
  ZKPROXY_ERR_REPLICA_BACKEND_UNREACHABLE: { message: 'the backend to register does not answer' }
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof errorCatalogue

export class ZkproxyError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number | undefined

  constructor (code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = errorCatalogue[code]
    super(detail === undefined ? spec.message : `${spec.message}: ${detail}`, options)
    this.name = 'ZkproxyError'
    this.code = code
    this.statusCode = spec.statusCode
  }
}

export function createError (code: ErrorCode, detail?: string, cause?: unknown): ZkproxyError {
  return new ZkproxyError(code, detail, cause === undefined ? undefined : { cause })
}

/** True when `err` carries the given catalogue code (works for any object with `code`). */
export function hasCode (err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code
}

// The OS's listen errors, translated once for every listener (public, admin, replica).
const LISTEN_REASONS: Record<string, (host: string, port: number) => string> = {
  EADDRINUSE: (host, port) => `port ${port} in use on ${host}`,
  EACCES: (host, port) => `no permission to listen on ${host}:${port}`,
  EADDRNOTAVAIL: (host) => `${host} is not an address of this machine`,
  ENOTFOUND: (host) => `${host} is not an address of this machine`,
  EAI_AGAIN: (host) => `${host} could not be resolved`
}

/**
 * A listener that could not start, as one line naming the flag: `--listen 0.0.0.0:80: no
 * permission to listen on 0.0.0.0:80`. Errors other than the OS's listen errors pass through.
 */
export function listenError (err: unknown, code: 'ZKPROXY_ERR_PROXY_LISTEN' | 'ZKPROXY_ERR_REPLICA_LISTEN', flag: string, host: string, port: number): Error {
  const reason = LISTEN_REASONS[(err as { code?: string } | null)?.code ?? '']
  if (reason === undefined) return err instanceof Error ? err : new Error(String(err))
  return createError(code, `${flag} ${host}:${port}: ${reason(host, port)}`, err)
}
