// `npm run loadtest -- --url http://127.0.0.1:9000/ --duration 10 --connections 50`
// autocannon, driven programmatically (after fastify's and pino's benchmarks): a progress bar
// (a line per second without a terminal), then one summary table — req/s, latency
// p50/p97.5/p99, errors and non-2xx, cache hits, and each replica's share of the responses,
// counted from the `x-served-by` header the bundled replica sets.
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
interface Client { on (event: 'headers', fn: (info: { statusCode: number, headers: string[] }) => void): void }
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
          [--max-requests 1000000] [--timeout 10] [--bypass-cache] [--json] [--allow-remote]`

interface Options {
  url: URL
  durationSec: number
  connections: number
  maxRequests: number
  timeoutSec: number
  bypassCache: boolean
  json: boolean
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
  return {
    url,
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

interface Tally { servedBy: Map<string, number>, cache: Map<string, number> }

async function runLoad (o: Options, tally: Tally): Promise<Result> {
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
      headers: o.bypassCache ? { 'cache-control': 'no-store' } : {},
      setupClient: (client: Client) => {
        client.on('headers', ({ headers }) => {
          // The parser hands headers over as a flat [name, value, name, value, ...] list.
          for (let i = 0; i + 1 < headers.length; i += 2) {
            const name = headers[i]?.toLowerCase()
            const value = headers[i + 1] ?? ''
            if (name === 'x-served-by') tally.servedBy.set(value, (tally.servedBy.get(value) ?? 0) + 1)
            else if (name === 'x-cache') tally.cache.set(value.toUpperCase(), (tally.cache.get(value.toUpperCase()) ?? 0) + 1)
          }
        })
      }
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

function summary (o: Options, r: Result, tally: Tally): string {
  const fmt = (n: number): string => n.toLocaleString('en-US')
  const pct = (n: number, of: number): string => (of === 0 ? '-' : `${(100 * n / of).toFixed(1)}%`)
  const served = [...tally.servedBy.values()].reduce((a, b) => a + b, 0)
  const cacheSeen = [...tally.cache.values()].reduce((a, b) => a + b, 0)
  const lines = [
    '',
    `GET ${o.url.href}  ${o.connections} connections, ${o.durationSec} s${o.bypassCache ? ', cache bypassed (Cache-Control: no-store)' : ''}`,
    '',
    `  requests     ${fmt(r.requests.total)} in ${r.duration.toFixed(1)} s   ${fmt(Math.round(r.requests.average))} req/s average`,
    `  latency      p50 ${r.latency.p50} ms   p97.5 ${r.latency.p97_5} ms   p99 ${r.latency.p99} ms   max ${r.latency.max} ms`,
    `  throughput   ${(r.throughput.average / 1024 / 1024).toFixed(1)} MiB/s`,
    `  errors       ${fmt(r.errors)} (of which timeouts ${fmt(r.timeouts)})   non-2xx ${fmt(r.non2xx)}`
  ]
  if (cacheSeen > 0) {
    lines.push(`  cache        ${[...tally.cache].sort().map(([k, n]) => `${k} ${pct(n, cacheSeen)}`).join('   ')}`)
  }
  lines.push('')
  if (served === 0) {
    lines.push('  no response carried x-served-by (not the bundled replica behind the proxy?)')
  } else {
    const rows = [...tally.servedBy].sort(([a], [b]) => a.localeCompare(b))
    const width = Math.max(10, ...rows.map(([name]) => name.length))
    lines.push(`  ${'served by'.padEnd(width)}  ${'responses'.padStart(10)}  ${'share'.padStart(6)}`)
    for (const [name, n] of rows) lines.push(`  ${name.padEnd(width)}  ${fmt(n).padStart(10)}  ${pct(n, served).padStart(6)}`)
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
  const tally: Tally = { servedBy: new Map(), cache: new Map() }
  process.stderr.write(`loadtest: ${o.connections} connections for ${o.durationSec} s (at most ${o.maxRequests.toLocaleString('en-US')} requests) against ${o.url.href}\n`)
  const r = await runLoad(o, tally)
  process.stdout.write(summary(o, r, tally))
  if (o.json) {
    process.stdout.write(JSON.stringify({
      url: o.url.href,
      connections: o.connections,
      durationSec: r.duration,
      requests: r.requests.total,
      reqPerSec: r.requests.average,
      latencyMs: { p50: r.latency.p50, p97_5: r.latency.p97_5, p99: r.latency.p99, max: r.latency.max },
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      cache: Object.fromEntries(tally.cache),
      servedBy: Object.fromEntries(tally.servedBy)
    }) + '\n')
  }
  // autocannon's `errors` already includes timeouts.
  if (r.errors + r.non2xx > 0) process.exitCode = 1
}

await main().catch((err: unknown) => {
  process.stderr.write(`loadtest: ${(err as Error).message}\n`)
  process.exit(2)
})
