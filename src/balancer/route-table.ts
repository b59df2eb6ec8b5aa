// The route table: which pool of targets serves a request, from the routes the live targets
// declare (`--route HOST[/PATH-PREFIX]`). Built whole from a snapshot's targets and immutable
// afterwards, like the snapshot itself; pure (no I/O), so it is table-tested without a proxy.
//
// Matching, in order (docs/routing.md):
//   1. the Host, case-insensitively and without its port: an exact host before `*.parent`
//      (one label), and a host whose path prefixes all miss falls through to its wildcard;
//   2. within a host, the longest path prefix that ends on a segment boundary;
//   3. nothing matched: the default pool (targets without routes), if any.
// Lookup cost does not grow with the number of hosts (two Map lookups) and, within one host,
// only with that host's own prefixes.
import { DEFAULT_POOL_KEY, type Route } from '../routes.js'

export { DEFAULT_POOL_KEY }

/** What the table needs of a target: its name and the routes it declares. */
export interface RoutedTarget {
  readonly name: string
  /** Empty or absent: the target belongs to the default pool. */
  readonly routes?: readonly Route[] | undefined
}

/** Targets declaring one route (or, for the default pool, none). */
export interface PoolEntry<T> {
  /** The route's canonical text (`shop.example.com/api`), or DEFAULT_POOL_KEY. */
  readonly key: string
  /** Undefined for the default pool. */
  readonly route: Route | undefined
  /** In the order given to the table (the snapshot's, by name). */
  readonly targets: readonly T[]
}

export class RouteTable<T extends RoutedTarget> {
  /** Every pool, the default one (when there is one) first, then by key. */
  readonly pools: ReadonlyArray<PoolEntry<T>>
  /**
   * Targets without routes. With no target at all it is present and empty, so a proxy without
   * targets answers "no targets" (503) exactly as before routes existed; when every target
   * declares routes it is absent, and a request no route matches has nowhere to go (404).
   */
  readonly defaultPool: PoolEntry<T> | undefined
  // Host → its pools, longest path prefix first. Wildcards are indexed by their parent domain.
  readonly #exact = new Map<string, Array<PoolEntry<T>>>()
  readonly #wildcard = new Map<string, Array<PoolEntry<T>>>()
  readonly #byKey = new Map<string, PoolEntry<T>>()

  constructor (targets: readonly T[]) {
    const grouped = new Map<string, { route: Route, targets: T[] }>()
    const unrouted: T[] = []
    for (const t of targets) {
      const routes = t.routes
      if (routes === undefined || routes.length === 0) {
        unrouted.push(t)
        continue
      }
      for (const route of routes) {
        const g = grouped.get(route.key)
        // A target listing one route twice (in two spellings) joins its pool once.
        if (g === undefined) grouped.set(route.key, { route, targets: [t] })
        else if (!g.targets.includes(t)) g.targets.push(t)
      }
    }

    const pools: Array<PoolEntry<T>> = []
    this.defaultPool = unrouted.length > 0 || targets.length === 0
      ? Object.freeze({ key: DEFAULT_POOL_KEY, route: undefined, targets: Object.freeze(unrouted) })
      : undefined
    if (this.defaultPool !== undefined) pools.push(this.defaultPool)
    for (const key of [...grouped.keys()].sort()) {
      const g = grouped.get(key)!
      const pool: PoolEntry<T> = Object.freeze({ key, route: g.route, targets: Object.freeze(g.targets) })
      pools.push(pool)
      const index = g.route.wildcard ? this.#wildcard : this.#exact
      const list = index.get(g.route.host)
      if (list === undefined) index.set(g.route.host, [pool])
      else list.push(pool)
    }
    for (const p of pools) this.#byKey.set(p.key, p)
    for (const index of [this.#exact, this.#wildcard]) {
      for (const list of index.values()) list.sort(longestPrefixFirst)
    }
    this.pools = Object.freeze(pools)
  }

  /** The pool with this key, if any target declares it. */
  get (key: string): PoolEntry<T> | undefined { return this.#byKey.get(key) }

  /**
   * The pool serving a request for `host` (the Host header as received: any case, with or
   * without a port, IPv6 in brackets) and `path` (the origin-form request target; a query is
   * allowed). Undefined: no route matches and there is no default pool (404 no_route).
   */
  match (host: string | undefined, path: string): PoolEntry<T> | undefined {
    if (this.#exact.size !== 0 || this.#wildcard.size !== 0) {
      const name = normalizeHost(host)
      const found = longestMatch(this.#exact.get(name), path) ??
        longestMatch(this.#wildcard.get(parentDomain(name)), path)
      if (found !== undefined) return found
    }
    return this.defaultPool
  }
}

/**
 * The host part of a Host header, lower-case, without port or trailing dot: `Shop.Example.COM:8080`
 * → `shop.example.com`, `[::1]:9000` → `[::1]`. An absent header is '' (only the default pool).
 */
export function normalizeHost (header: string | undefined): string {
  if (header === undefined) return ''
  let end = header.length
  if (header.charCodeAt(0) === 0x5b /* [ */) {
    const close = header.indexOf(']')
    if (close !== -1) end = close + 1
  } else {
    const colon = header.indexOf(':')
    if (colon !== -1) end = colon
  }
  if (end > 0 && header.charCodeAt(end - 1) === 0x2e /* . */) end--
  return (end === header.length ? header : header.slice(0, end)).toLowerCase()
}

/** `a.example.com` → `example.com`; a host without a dot has no parent (''). */
function parentDomain (host: string): string {
  const dot = host.indexOf('.')
  return dot === -1 ? '' : host.slice(dot + 1)
}

/**
 * `prefix` covers `path` when it is the whole path or is followed by '/' or '?': `/api` covers
 * `/api`, `/api/x` and `/api?x`, never `/apix`. `/` covers every path.
 */
export function prefixCovers (prefix: string, path: string): boolean {
  if (prefix === '/') return true
  if (!path.startsWith(prefix)) return false
  if (path.length === prefix.length) return true
  const next = path.charCodeAt(prefix.length)
  return next === 0x2f /* / */ || next === 0x3f /* ? */
}

function longestMatch<T> (pools: Array<PoolEntry<T>> | undefined, path: string): PoolEntry<T> | undefined {
  if (pools === undefined) return undefined
  // Indexed loop: no iterator allocated on the request path.
  for (let i = 0; i < pools.length; i++) {
    const p = pools[i]!
    if (prefixCovers(p.route!.pathPrefix, path)) return p
  }
  return undefined
}

function longestPrefixFirst<T> (a: PoolEntry<T>, b: PoolEntry<T>): number {
  const d = b.route!.pathPrefix.length - a.route!.pathPrefix.length
  return d !== 0 ? d : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}
