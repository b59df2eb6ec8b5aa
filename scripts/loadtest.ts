// `npm run loadtest -- --url http://127.0.0.1:9000/ --duration 10 --connections 50`
// autocannon, driven programmatically (after fastify's and pino's benchmarks): a progress bar
// (a line per second without a terminal), then one summary table — req/s, latency
// p50/p97.5/p99, errors and non-2xx, then what the proxy itself counted during the run, read
// from its admin listener's /metrics before and after: the requests each target answered
// (`zkproxy_requests_total`, so the share is right for any backend, a `register`ed one that
// sets no header included) and how many were cache hits, misses or bypassed the cache. A
// response header cannot tell this: only the bundled replica names itself in one, and a
// cached response carries the header of whoever produced it. The proxy's counts include any
// other client's requests during the run; on a dev stack there are none.
// Bounded in time (--duration, at most 600 s) and count (--max-requests), and only against
// loopback unless --allow-remote: a load generator must not be pointed at someone else's host.
// Exit code 1 when any request failed (connection error, timeout or non-2xx), so a run while
// replicas are being killed doubles as a "no failed requests" check.
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

interface Histogram { average: number, p50: number, p97_5: number, p99: number, max: number, total: number }
interface Result {
  requests: Histogram & { sent: number }
  latency: Histogram
  throughput: Histogram
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  statusCodeStats: Record<string, { count: number }>
}
interface Instance {
  on (event: 'tick', fn: (t: { counter: number }) => void): void
  stop (): void
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: Result) => void) => Instance

// autocannon is CommonJS without type declarations: the shapes used here are stated above.
// It is a dev dependency (the load test runs from a checkout, not from the production image).
function loadAutocannon (): Autocannon {
  try {
    return createRequire(import.meta.url)('autocannon') as Autocannon
  } catch (err) {
    throw new Error(`cannot load autocannon (${(err as Error).message.split('\n')[0] ?? ''}); it is a dev dependency: run \`npm ci\` without --omit=dev`)
  }
}

const USAGE = `usage: npm run loadtest -- [--url http://127.0.0.1:9000/] [--duration 10] [--connections 50]
          [--max-requests 1000000] [--timeout 10] [--bypass-cache] [--json] [--allow-remote]
          [--admin http://127.0.0.1:9901|off]   (the loaded proxy's admin listener: who served what)`

interface Options {
  url: URL
  durationSec: number
  connections: number
  maxRequests: number
  timeoutSec: number
  bypassCache: boolean
  json: boolean
  /** The proxy's admin listener; undefined with `--admin off` (no per-target figures). */
  admin: URL | undefined
}

function parseOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:9000/' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      'max-requests': { type: 'string', default: '1000000' },
      timeout: { type: 'string', default: '10' },
      'bypass-cache': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'allow-remote': { type: 'boolean', default: false },
      // The dev stack's admin address (`zkproxy dev`, `npm run demo`).
      admin: { type: 'string', default: 'http://127.0.0.1:9901' },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) {
    process.stdout.write(USAGE + '\n')
    process.exit(0)
  }
  let url: URL
  try { url = new URL(values.url) } catch { throw new Error(`--url: not a URL: ${values.url}`) }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--url: expected http: or https:, got ${url.protocol}`)
  if (!values['allow-remote'] && !isLoopback(url.hostname)) {
    throw new Error(`--url ${url.hostname} is not a loopback address; pass --allow-remote to load a host you operate`)
  }
  let admin: URL | undefined
  if (values.admin !== 'off') {
    try { admin = new URL(values.admin) } catch { throw new Error(`--admin: not a URL (or off): ${values.admin}`) }
    if (admin.protocol !== 'http:' && admin.protocol !== 'https:') throw new Error(`--admin: expected http: or https:, got ${admin.protocol}`)
  }
  return {
    url,
    admin,
    durationSec: whole('--duration', values.duration, 1, 600),
    connections: whole('--connections', values.connections, 1, 1000),
    maxRequests: whole('--max-requests', values['max-requests'], 1, 100_000_000),
    timeoutSec: whole('--timeout', values.timeout, 1, 120),
    bypassCache: values['bypass-cache'],
    json: values.json
  }
}

function whole (flag: string, v: string, min: number, max: number): number {
  const n = Number(v)
  if (!/^\d+$/.test(v.trim()) || n < min || n > max) throw new Error(`${flag}: expected a whole number from ${min} to ${max}, got "${v}"`)
  return n
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** One scrape's figures of interest: requests answered per target, and cache lookups. */
interface Scrape {
  readonly perTarget: Map<string, number>
  readonly hits: number
  readonly misses: number
  readonly bypassed: number
  readonly stale: number
}

/**
 * The few series the report needs, from Prometheus' text format (one sample a line:
 * `name{label="value",...} number`; label values escape `\\`, `\"` and `\n`).
 */
function parseScrape (text: string): Scrape {
  const perTarget = new Map<string, number>()
  let hits = 0; let misses = 0; let bypassed = 0; let stale = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const value = Number(m[3])
    if (!Number.isFinite(value)) continue
    switch (m[1]) {
      case 'zkproxy_requests_total': {
        const target = labelsOf(m[2] ?? '').get('target')
        if (target !== undefined) perTarget.set(target, (perTarget.get(target) ?? 0) + value)
        break
      }
      case 'zkproxy_cache_hits_total': hits += value; break
      case 'zkproxy_cache_misses_total': misses += value; break
      case 'zkproxy_cache_bypasses_total': bypassed += value; break
      case 'zkproxy_cache_stale_total': stale += value; break
    }
  }
  return { perTarget, hits, misses, bypassed, stale }
}

function labelsOf (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const m of text.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
    out.set(m[1]!, m[2]!.replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c)))
  }
  return out
}

/** What the proxy counted between two scrapes (a target that appeared in between started at 0). */
function difference (before: Scrape, after: Scrape): Scrape {
  const perTarget = new Map<string, number>()
  for (const [name, n] of after.perTarget) {
    const d = n - (before.perTarget.get(name) ?? 0)
    if (d > 0) perTarget.set(name, d)
  }
  return { perTarget, hits: after.hits - before.hits, misses: after.misses - before.misses, bypassed: after.bypassed - before.bypassed, stale: after.stale - before.stale }
}

async function scrape (admin: URL): Promise<Scrape> {
  const url = new URL('/metrics', admin)
  let res: Response
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message
    throw new Error(`cannot read the proxy's metrics at ${url.href} (${cause}): pass --admin with the admin URL of the proxy under load (its \`proxy listening\` log line names it), or --admin off`)
  }
  if (!res.ok) throw new Error(`${url.href} answered ${res.status}: is --admin the proxy's admin listener?`)
  const text = await res.text()
  if (!text.includes('zkproxy_requests_total')) throw new Error(`${url.href} has no zkproxy metrics: is --admin the proxy's admin listener?`)
  return parseScrape(text)
}

async function runLoad (o: Options): Promise<Result> {
  const autocannon = loadAutocannon()
  return await new Promise<Result>((resolve, reject) => {
    const instance = autocannon({
      url: o.url.href,
      connections: o.connections,
      duration: o.durationSec,
      // autocannon refuses a cap below one request per connection.
      maxOverallRequests: Math.max(o.maxRequests, o.connections),
      timeout: o.timeoutSec,
      // `no-store` makes the proxy skip its cache: every request then goes through the balancer.
      headers: o.bypassCache ? { 'cache-control': 'no-store' } : {}
    }, (err, result) => {
      clearTimeout(watchdog)
      process.off('SIGINT', onSigint)
      if (err !== null) reject(err)
      else resolve(result)
    })
    // Ctrl-C ends the run early and still prints what was measured.
    const onSigint = (): void => { instance.stop() }
    process.once('SIGINT', onSigint)
    // A hung server must not keep us past the duration plus one request timeout.
    const watchdog = setTimeout(() => { instance.stop() }, (o.durationSec + o.timeoutSec + 5) * 1000)
    progress(instance, o.durationSec)
  })
}

/** A bar on a terminal; one line per second otherwise (CI logs, pipes). */
function progress (instance: Instance, durationSec: number): void {
  const out = process.stderr
  let seconds = 0
  instance.on('tick', ({ counter }) => {
    seconds++
    // autocannon may tick once more while its connections close.
    if (seconds > durationSec) return
    const done = Math.min(seconds / durationSec, 1)
    if (out.isTTY) {
      const width = 30
      const bar = '#'.repeat(Math.round(done * width)).padEnd(width, '.')
      out.write(`\r  [${bar}] ${String(Math.round(done * 100)).padStart(3)}%  ${seconds}/${durationSec} s  ${counter} req/s `)
      if (seconds >= durationSec) out.write('\n')
    } else {
      out.write(`  ${seconds}/${durationSec} s  ${counter} req/s\n`)
    }
  })
}

function summary (o: Options, r: Result, seen: Scrape | undefined, unmeasured: string): string {
  const fmt = (n: number): string => n.toLocaleString('en-US')
  const pct = (n: number, of: number): string => (of === 0 ? '-' : `${(100 * n / of).toFixed(1)}%`)
  const lines = [
    '',
    `GET ${o.url.href}  ${o.connections} connections, ${o.durationSec} s${o.bypassCache ? ', cache bypassed (Cache-Control: no-store)' : ''}`,
    '',
    `  requests     ${fmt(r.requests.total)} in ${r.duration.toFixed(1)} s   ${fmt(Math.round(r.requests.average))} req/s average`,
    `  latency      p50 ${r.latency.p50} ms   p97.5 ${r.latency.p97_5} ms   p99 ${r.latency.p99} ms   max ${r.latency.max} ms`,
    `  throughput   ${(r.throughput.average / 1024 / 1024).toFixed(1)} MiB/s`,
    `  errors       ${fmt(r.errors)} (of which timeouts ${fmt(r.timeouts)})   non-2xx ${fmt(r.non2xx)}`,
    ''
  ]
  if (seen === undefined) {
    lines.push(`  who served what: not measured (${unmeasured})`)
    return lines.join('\n') + '\n'
  }
  const forwarded = [...seen.perTarget.values()].reduce((a, b) => a + b, 0)
  const lookups = seen.hits + seen.misses + seen.bypassed
  lines.push(`  as counted by the proxy (${o.admin?.origin ?? ''}/metrics, during the run):`)
  lines.push(lookups === 0
    ? '  cache        off, or no request consulted it'
    : `  cache        hits ${fmt(seen.hits)} (${pct(seen.hits, lookups)})   misses ${fmt(seen.misses)}   bypassed ${fmt(seen.bypassed)}${seen.stale > 0 ? `   stale served ${fmt(seen.stale)}` : ''}`)
  if (forwarded === 0) {
    lines.push('  no request was forwarded to a target')
  } else {
    const rows = [...seen.perTarget].sort(([a], [b]) => a.localeCompare(b))
    const width = Math.max(10, ...rows.map(([name]) => name.length))
    lines.push('', `  ${'target'.padEnd(width)}  ${'responses'.padStart(10)}  ${'share'.padStart(6)}`)
    for (const [name, n] of rows) lines.push(`  ${name.padEnd(width)}  ${fmt(n).padStart(10)}  ${pct(n, forwarded).padStart(6)}`)
  }
  return lines.join('\n') + '\n'
}

async function main (): Promise<void> {
  let o: Options
  try {
    o = parseOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`loadtest: ${(err as Error).message}\n${USAGE}\n`)
    process.exit(2)
  }
  // Read first: a wrong --admin is found before the load, not after it.
  const before = o.admin === undefined ? undefined : await scrape(o.admin)
  process.stderr.write(`loadtest: ${o.connections} connections for ${o.durationSec} s (at most ${o.maxRequests.toLocaleString('en-US')} requests) against ${o.url.href}\n`)
  const r = await runLoad(o)
  let seen: Scrape | undefined
  let unmeasured = '--admin off'
  if (o.admin !== undefined && before !== undefined) {
    // The proxy may have stopped during the run: what autocannon measured is still reported.
    try {
      seen = difference(before, await scrape(o.admin))
    } catch (err) {
      unmeasured = 'the proxy\'s metrics could not be read after the run'
      process.stderr.write(`loadtest: ${(err as Error).message}\n`)
    }
  }
  // With --json, stdout carries the JSON document and nothing else (progress goes to stderr).
  if (!o.json) {
    process.stdout.write(summary(o, r, seen, unmeasured))
  } else {
    process.stdout.write(JSON.stringify({
      url: o.url.href,
      admin: o.admin?.origin ?? null,
      connections: o.connections,
      durationSec: r.duration,
      bypassCache: o.bypassCache,
      requests: r.requests.total,
      reqPerSec: r.requests.average,
      latencyMs: { p50: r.latency.p50, p97_5: r.latency.p97_5, p99: r.latency.p99, max: r.latency.max },
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      // null with --admin off; counts are the proxy's, during the run.
      cache: seen === undefined ? null : { hits: seen.hits, misses: seen.misses, bypassed: seen.bypassed, stale: seen.stale },
      servedBy: seen === undefined ? null : Object.fromEntries([...seen.perTarget].sort(([a], [b]) => a.localeCompare(b)))
    }) + '\n')
  }
  // autocannon's `errors` already includes timeouts.
  if (r.errors + r.non2xx > 0) process.exitCode = 1
}

await main().catch((err: unknown) => {
  process.stderr.write(`loadtest: ${(err as Error).message}\n`)
  process.exit(2)
})
