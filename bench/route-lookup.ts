// `node dist/bench/route-lookup.js`: what choosing a target costs per request with 1 route
// against 200 routes × 5 targets (exact hosts, wildcards and path prefixes mixed), in the same
// process: `router.pool(host, path)` then `pool.pick()`, as the request path calls them. Pure
// CPU, no sockets. Per kind of route, a table holding only one route of that kind is compared
// with the 200-route table answering requests for all its routes of that kind (so the same work
// per request, against a table 200 times larger). The two are measured in mirrored blocks
// (A B B A ...) so that JIT warm-up and frequency drift fall on both alike; the figure is the
// median ns per lookup.
// Env: ROUTE_BENCH_BLOCKS (default 8), ROUTE_BENCH_LOOKUPS (per block, default 200000).
import { Router, type CountView, type RoutableTarget } from '../src/proxy/router.js'
import { routeOrThrow } from '../src/routes.js'
import { median } from './stats.js'

const blocks = Number(process.env['ROUTE_BENCH_BLOCKS'] ?? 8)
const lookups = Number(process.env['ROUTE_BENCH_LOOKUPS'] ?? 200_000)
const TARGETS_PER_ROUTE = 5

interface Request { readonly host: string, readonly path: string }

function target (name: string, route: string, requests: number): RoutableTarget {
  return { name, origin: `http://${name}:80`, url: `http://${name}:80`, generation: '1', requests, revision: undefined, startedAt: undefined, routes: [routeOrThrow(route)] }
}

const KINDS = ['exact host', 'wildcard', 'path prefix'] as const

/**
 * A router over `routes` routes of 5 targets each, and per kind the requests for its routes of
 * that kind. `only` builds a table of routes of that one kind.
 */
function setup (routes: number, only?: number): { router: Router, requests: Request[][] } {
  const targets: RoutableTarget[] = []
  const requests: Request[][] = [[], [], []]
  for (let r = 0; r < routes; r++) {
    // A third each: exact host, wildcard, host + path prefix (with a second, shorter prefix
    // on the same host so the prefix scan has something to skip).
    const kind = only ?? r % 3
    const route = kind === 0 ? `app${r}.example.com` : kind === 1 ? `*.tenant${r}.example.com` : `api${r}.example.com/v2/items`
    for (let i = 0; i < TARGETS_PER_ROUTE; i++) targets.push(target(`r${r}-t${i}`, route, 1000 + i))
    if (kind === 2) targets.push(target(`r${r}-root`, `api${r}.example.com/v2`, 0))
    requests[kind]!.push(kind === 0
      ? { host: `App${r}.example.com:9000`, path: '/index.html' }
      : kind === 1 ? { host: `acme.tenant${r}.example.com`, path: '/dashboard?tab=1' } : { host: `api${r}.example.com`, path: '/v2/items/42' })
  }
  const router = new Router({ countFor: (t): CountView => ({ pending: 0, total: t.requests }) })
  router.update(targets)
  return { router, requests }
}

/** Nanoseconds per lookup over `n` lookups cycling through `requests`. */
function measure (router: Router, requests: readonly Request[], n: number): number {
  let picked = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    const req = requests[i % requests.length]!
    if (router.pool(req.host, req.path)?.pick() !== undefined) picked++
  }
  const ns = Number(process.hrtime.bigint() - start) / n
  // Every request must have found a target, or the figure measures a miss path.
  if (picked !== n) throw new Error(`only ${picked} of ${n} lookups found a target`)
  return ns
}

const many = setup(200)
console.log(`200 routes: ${many.router.targets.length} targets in ${many.router.pools.length} pools; ${blocks} blocks of ${lookups} lookups per table and kind`)
for (const [kind, label] of KINDS.entries()) {
  const one = setup(1, kind)
  const oneRequests = one.requests[kind]!
  const manyRequests = many.requests[kind]!
  const a: number[] = []
  const b: number[] = []
  for (let i = 0; i < blocks; i++) {
    if (i % 2 === 0) {
      a.push(measure(one.router, oneRequests, lookups))
      b.push(measure(many.router, manyRequests, lookups))
    } else {
      b.push(measure(many.router, manyRequests, lookups))
      a.push(measure(one.router, oneRequests, lookups))
    }
  }
  // The first pair is warm-up (JIT), left out of the medians.
  const ma = median(a.slice(1))
  const mb = median(b.slice(1))
  console.log(`${label.padEnd(12)} 1 route ${ma.toFixed(1).padStart(6)} ns   200 routes (${manyRequests.length} of this kind) ${mb.toFixed(1).padStart(6)} ns   ratio ${(mb / ma).toFixed(2)}`)
}
