// `node dist/bench/coherence.js`: what the revision-coherence check costs on the hit path. 1,000
// live entries from targets at 3 revisions (each entry holding its (pool, revision) cell) against
// the same 1,000 entries without a cell, looked up through ResponseCache.get as a hit does, in
// the same process. Only the lookup is measured, not the writing of the response, so the share
// printed is an upper bound of the check's share of a whole hit. Mirrored blocks (A B B A ...),
// first pair left out as warm-up; the figure is the median ns per lookup.
// Env: COHERENCE_BENCH_BLOCKS (default 40), COHERENCE_BENCH_LOOKUPS (per block, default 50000): many
// short blocks, as a loaded machine's noise is then spread over both sides alike.
import { RevisionLiveness, ResponseCache, createEntry, evaluate, type CacheRequest } from '../src/cache/index.js'
import { median } from './stats.js'

const blocks = Number(process.env['COHERENCE_BENCH_BLOCKS'] ?? 40)
const lookups = Number(process.env['COHERENCE_BENCH_LOOKUPS'] ?? 50_000)
const ENTRIES = 1000
const REVISIONS = ['rev-a', 'rev-b', 'rev-c']
const now = Date.now()

function build (withCells: boolean): { cache: ResponseCache, requests: CacheRequest[] } {
  const cache = new ResponseCache({ maxEntries: ENTRIES * 2, maxBytes: 512 * 1024 * 1024, now: () => now })
  const live = new RevisionLiveness()
  live.update(new Map([['default', new Set(REVISIONS)]]))
  const requests: CacheRequest[] = []
  const headers = { 'cache-control': 'public, max-age=600', 'content-type': 'text/html' }
  for (let i = 0; i < ENTRIES; i++) {
    const req: CacheRequest = { method: 'GET', url: `/page/${i}?q=${i % 7}`, headers: { host: 'site.example' } }
    const decision = evaluate(req, { status: 200, headers }, { cacheTtlSec: 600, now })
    if (!decision.storable) throw new Error('fixture not storable')
    const source = withCells ? live.cell('default', REVISIONS[i % REVISIONS.length]) : undefined
    if (!cache.set(req, createEntry({ req, status: 200, headers, body: Buffer.alloc(512, 120), decision, now, source }))) throw new Error('not stored')
    requests.push(req)
  }
  return { cache, requests }
}

/** Nanoseconds per lookup; every lookup must be a hit. */
function measure (cache: ResponseCache, requests: readonly CacheRequest[], n: number): number {
  let hits = 0
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) if (cache.get(requests[i % requests.length]!) !== undefined) hits++
  const ns = Number(process.hrtime.bigint() - start) / n
  if (hits !== n) throw new Error(`only ${hits} of ${n} lookups were hits`)
  return ns
}

const plain = build(false)
const coherent = build(true)
const a: number[] = []
const b: number[] = []
for (let i = 0; i < blocks; i++) {
  if (i % 2 === 0) {
    a.push(measure(plain.cache, plain.requests, lookups))
    b.push(measure(coherent.cache, coherent.requests, lookups))
  } else {
    b.push(measure(coherent.cache, coherent.requests, lookups))
    a.push(measure(plain.cache, plain.requests, lookups))
  }
}
const ma = median(a.slice(1))
const mb = median(b.slice(1))
console.log(`${ENTRIES} entries, ${REVISIONS.length} revisions; ${blocks} blocks of ${lookups} lookups`)
console.log(`lookup without revisions ${ma.toFixed(1)} ns, with the coherence check ${mb.toFixed(1)} ns: ${(((mb - ma) / ma) * 100).toFixed(1)}% of a lookup`)
