// `npm run bench`: one bounded run on loopback comparing, against the same two origins:
//   direct      the origin itself (a bare node:http server answering 1 KiB from memory)
//   nginx       nginx (1 worker, keepalive upstream, least_conn) in front of both origins
//   bare        bare fastify + @fastify/reply-from round-robin (no discovery, counting, failover)
//   floor       node:http handing each request straight to undici's dispatcher, round-robin,
//               with no rules at all: the least this stack (Node + undici) costs per request
//   zkproxy     zkproxy with the cache off (--cache-ttl 0), targets from ZooKeeper
//   zk-hit      zkproxy with the cache on, every request a hit
//   zk-miss     the same proxy, every request a miss (the origin says no-store under /no-store):
//               the default configuration forwarding uncacheable traffic
//   ceiling     a bare node:http server sending the exact bytes of one hit (head and body)
// Each case runs ROUNDS times, interleaved, and the medians are compared as ratios measured in
// the same run (the machine is shared and noisy). ZooKeeper operations per proxied request are
// read from ZooKeeper's own `mntr` packet counters. Every process is stopped by PID.
// The cache-hit ratios are measured once more in mirrored blocks of short runs (mirrored()).
// Env: BENCH_DURATION_S (default 5), BENCH_ROUNDS (3), BENCH_CONNECTIONS (50), BENCH_CASES (all),
// BENCH_PAIR_BLOCKS (6; 0 skips the mirrored blocks), BENCH_PAIR_S (2),
// BENCH_PROXY_NODE_FLAGS (extra node flags for the zkproxy processes, e.g. --cpu-prof).
// The zkproxy processes run with their admin listener on (the default), so metrics are recorded.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { request as undiciRequest } from 'undici'
import { startZooKeeper, type ZkCluster } from '../test/support/zookeeper.js'
import { freePort } from '../test/support/ports.js'
import { spawnTracked, stopAllTracked, type TrackedProcess } from '../test/support/processes.js'
import { CreateMode, ZkSession } from '../src/zk/index.js'
import { median } from './stats.js'

const durationS = Number(process.env['BENCH_DURATION_S'] ?? 5)
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 3)
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const here = dirname(fileURLToPath(import.meta.url))
// The paced latency run: every connection waits PACE_MS between requests (about
// connections / PACE_MS requests per second: 5,000/s with 50 connections), for the cases below.
const PACE_MS = 10
const PACED: ReadonlySet<string> = new Set(['direct', 'nginx', 'floor', 'zkproxy'])
const PAUSE_MS = 2000
// The mirrored blocks that measure cache hits once more (see mirrored()).
const MIRRORED = ['zk-hit', 'ceiling', 'nginx']
const PAIR_BLOCKS = Number(process.env['BENCH_PAIR_BLOCKS'] ?? 6)
const PAIR_S = Number(process.env['BENCH_PAIR_S'] ?? 2)
const PAIR_PAUSE_MS = 300
const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
const cli = join(here, '..', 'src', 'cli', 'main.js')

interface Result { rps: number, p50: number, p99: number, requests: number, errors: number, proxyUs: number, pacedP50: number, pacedP99: number, pacedRps: number }

const TICKS_PER_S = 100 // Linux USER_HZ (getconf CLK_TCK)

/** CPU seconds (user + system) used so far by `pid` and its children (nginx's worker), from /proc. */
function cpuSeconds (pid: number | undefined): number {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    let ticks = Number(fields[11]) + Number(fields[12]) // utime, stime (fields 14 and 15 of stat)
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(c => c !== '')) {
      ticks += cpuSeconds(Number(child)) * TICKS_PER_S
    }
    return ticks / TICKS_PER_S
  } catch { return 0 }
}

function toMs (v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n
}

/**
 * One wrk run (bounded by -d); parses req/s and the 50%/99% latency lines. With `script`
 * (a Lua file defining delay()), each connection waits that long between requests: a paced
 * load well below saturation, so latency is the proxy's own and not queueing.
 */
async function load (url: string, script?: string, seconds = durationS): Promise<Result> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(script === undefined ? [] : ['-s', script]), url]
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    p.stdout.on('data', (c: Buffer) => { text += c.toString() })
    p.stderr.on('data', (c: Buffer) => { text += c.toString() })
    const timer = setTimeout(() => { p.kill('SIGKILL') }, (seconds + 30) * 1000)
    p.on('close', (code) => { clearTimeout(timer); code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`)) })
  })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN)
  const lat = (pct: string): number => {
    const m = new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s|m)`).exec(out)
    return m === null ? NaN : toMs(m[1]!, m[2]!)
  }
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0)
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const errors = non2xx + (sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0))
  return { rps, p50: lat('50'), p99: lat('99'), requests, errors, proxyUs: NaN, pacedP50: NaN, pacedP99: NaN, pacedRps: NaN }
}

// BENCH_PROXY_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the zkproxy processes
// (written when they exit on SIGTERM).
const proxyNodeFlags = (process.env['BENCH_PROXY_NODE_FLAGS'] ?? '').split(' ').filter(f => f !== '')

async function node (script: string, args: string[], name: string): Promise<TrackedProcess> {
  const flags = script === cli ? proxyNodeFlags : []
  const p = spawnTracked(process.execPath, [...flags, script, ...args], { name })
  await p.waitForOutput(/ready|proxy listening/, 20_000)
  return p
}

function nginxConf (dir: string, port: number, upstreams: number[]): string {
  const conf = `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream origins { least_conn; ${upstreams.map(p => `server 127.0.0.1:${p};`).join(' ')} keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://origins; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}`
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, conf)
  return file
}

async function zkPackets (zk: ZkCluster): Promise<number> {
  const m = await zk.mntr(0)
  // Requests ZooKeeper received (reads, writes, pings): its own count of operations.
  return Number(m['zk_packets_received'] ?? 0)
}

async function main (): Promise<void> {
  if (!existsSync('/usr/bin/wrk') && !hasCommand('wrk')) throw new Error('wrk is needed: apt-get install -y wrk')
  const log = pino({ level: 'silent' })
  const zk = await startZooKeeper({ nodes: 1 })
  const tmp = mkdtempSync(join(tmpdir(), 'zkproxy-bench-'))
  let nginx: TrackedProcess | undefined
  const proxies: TrackedProcess[] = []
  try {
    const originPorts = [await freePort(), await freePort()]
    const origins = await Promise.all(originPorts.map(async (p, i) => await node(join(here, 'origin.js'), [String(p), `origin-${i}`], `origin-${i}`)))

    const session = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000, logger: log }).start()
    await session.waitConnected(10_000)
    await session.mkdirp('/targets')
    for (const [i, p] of originPorts.entries()) {
      await session.create(`/targets/origin-${i}`, Buffer.from(JSON.stringify({ url: `http://127.0.0.1:${p}`, requests: 0 })), CreateMode.EPHEMERAL)
    }

    const cases: Array<{ name: string, url: string, pid: number | undefined }> = []
    cases.push({ name: 'direct', url: `http://127.0.0.1:${originPorts[0]}/bench`, pid: origins[0]?.pid })
    if (hasCommand('nginx')) {
      const port = await freePort()
      const conf = nginxConf(tmp, port, originPorts)
      nginx = spawnTracked(nginxBinary(), ['-c', conf, '-p', tmp, '-g', 'daemon off;'], { name: 'nginx' })
      await waitForPort(port)
      cases.push({ name: 'nginx', url: `http://127.0.0.1:${port}/bench`, pid: nginx.pid })
    }
    const barePort = await freePort()
    const bare = await node(join(here, 'bare-forward.js'), [String(barePort), ...originPorts.map(p => `http://127.0.0.1:${p}`)], 'bare')
    cases.push({ name: 'bare', url: `http://127.0.0.1:${barePort}/bench`, pid: bare.pid })
    const floorPort = await freePort()
    const floor = await node(join(here, 'floor-forward.js'), [String(floorPort), ...originPorts.map(p => `http://127.0.0.1:${p}`)], 'floor')
    cases.push({ name: 'floor', url: `http://127.0.0.1:${floorPort}/bench`, pid: floor.pid })
    const proxyPort = await freePort()
    // The admin listener is on, as by default: its metrics are recorded on the request path
    // (with --admin off they are not: a few percent less CPU per request, 2-5% in A/B runs).
    proxies.push(await node(cli, ['proxy', '--zk', zk.connectString, '--listen', `127.0.0.1:${proxyPort}`, '--admin', `127.0.0.1:${await freePort()}`, '--cache-ttl', '0', '--log-level', 'info'], 'zkproxy'))
    await waitForTargets(`http://127.0.0.1:${proxyPort}/bench`)
    cases.push({ name: 'zkproxy', url: `http://127.0.0.1:${proxyPort}/bench`, pid: proxies[0]?.pid })
    const cachePort = await freePort()
    proxies.push(await node(cli, ['proxy', '--zk', zk.connectString, '--listen', `127.0.0.1:${cachePort}`, '--admin', `127.0.0.1:${await freePort()}`, '--log-level', 'info'], 'zkproxy-cache'))
    await waitForTargets(`http://127.0.0.1:${cachePort}/bench`)
    cases.push({ name: 'zk-hit', url: `http://127.0.0.1:${cachePort}/bench`, pid: proxies[1]?.pid })
    cases.push({ name: 'zk-miss', url: `http://127.0.0.1:${cachePort}/no-store/bench`, pid: proxies[1]?.pid })
    // The hit ceiling: a bare node:http server sending the very bytes of one cache hit.
    const hit = await captureHit(`http://127.0.0.1:${cachePort}/bench`)
    const hitFile = join(tmp, 'hit.json')
    writeFileSync(hitFile, JSON.stringify(hit))
    const ceilingPort = await freePort()
    const ceiling = await node(join(here, 'ceiling.js'), [String(ceilingPort), hitFile], 'ceiling')
    cases.push({ name: 'ceiling', url: `http://127.0.0.1:${ceilingPort}/bench`, pid: ceiling.pid })

    // BENCH_CASES=bare,zkproxy runs a subset (A/B comparisons while optimising).
    const only = process.env['BENCH_CASES']?.split(',')
    if (only !== undefined) cases.splice(0, cases.length, ...cases.filter(c => only.includes(c.name)))
    const results = new Map<string, Result[]>(cases.map(c => [c.name, []]))
    let zkOps = 0
    let zkRequests = 0
    const pace = join(tmp, 'pace.lua')
    writeFileSync(pace, `function delay() return ${PACE_MS} end\n`)
    for (const c of cases) await load(c.url) // warm-up (JIT, keep-alive pools), not counted
    for (let r = 0; r < rounds; r++) {
      // Each round starts one case later: on a shared VM, what ran just before a case (host
      // throttling, a neighbour's burst) shifts its figures, so no case always follows another.
      for (const c of [...cases.slice(r % cases.length), ...cases.slice(0, r % cases.length)]) {
        // A short idle gap, so a case does not inherit the load of the one before it.
        await delay(PAUSE_MS)
        const before = c.name === 'zkproxy' ? await zkPackets(zk) : 0
        const cpuBefore = cpuSeconds(c.pid)
        const res = await load(c.url)
        res.proxyUs = (cpuSeconds(c.pid) - cpuBefore) * 1e6 / res.requests
        if (PACED.has(c.name)) {
          const paced = await load(c.url, pace)
          res.pacedP50 = paced.p50
          res.pacedP99 = paced.p99
          res.pacedRps = paced.rps
          res.errors += paced.errors
        }
        if (c.name === 'zkproxy') {
          zkOps += (await zkPackets(zk)) - before
          zkRequests += res.requests
        }
        results.get(c.name)!.push(res)
        process.stderr.write(`round ${r + 1}/${rounds} ${c.name.padEnd(8)} ${res.rps.toFixed(0)} req/s p50 ${res.p50.toFixed(2)} ms p99 ${res.p99.toFixed(2)} ms cpu ${res.proxyUs.toFixed(1)} us/req` +
          (PACED.has(c.name) ? ` | paced ${res.pacedRps.toFixed(0)} req/s p50 ${res.pacedP50.toFixed(2)} ms p99 ${res.pacedP99.toFixed(2)} ms` : '') +
          ` errors ${res.errors}\n`)
      }
    }
    const blocks = await mirrored(MIRRORED.flatMap(name => cases.filter(c => c.name === name)))
    report(results, zkOps, zkRequests, blocks)
    await session.close()
  } finally {
    await nginx?.stop('SIGQUIT', 3000)
    // Graceful first (a --cpu-prof profile is written on a normal exit), then SIGKILL for all.
    await Promise.all(proxies.map(async (p) => await p.stop('SIGTERM', 5000)))
    await stopAllTracked()
    await zk.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

/**
 * The cache-hit ratios once more, from mirrored blocks of short runs (hit, ceiling, nginx,
 * nginx, ceiling, hit): the speed of a shared host drifts over seconds to minutes, and within
 * a mirrored block each case sees the same average conditions, so the median of the blocks'
 * ratios is steadier than ratios of cases run up to a minute apart in the rounds above.
 * Returns each case's requests/s summed over its two runs, per block.
 */
async function mirrored (cases: ReadonlyArray<{ name: string, url: string }>): Promise<Map<string, number[]>> {
  const sums = new Map<string, number[]>(cases.map(c => [c.name, []]))
  if (cases.length < 2) return sums
  for (let b = 0; b < PAIR_BLOCKS; b++) {
    const block = new Map<string, number>()
    for (const c of [...cases, ...[...cases].reverse()]) {
      await delay(PAIR_PAUSE_MS)
      const res = await load(c.url, undefined, PAIR_S)
      block.set(c.name, (block.get(c.name) ?? 0) + res.rps)
    }
    for (const [name, rps] of block) sums.get(name)!.push(rps)
    process.stderr.write(`mirrored block ${b + 1}/${PAIR_BLOCKS} ${[...block].map(([n, v]) => `${n} ${(v / 2).toFixed(0)}`).join(', ')} req/s\n`)
  }
  return sums
}

function report (results: Map<string, Result[]>, zkOps: number, zkRequests: number, blocks: Map<string, number[]>): void {
  const med = (name: string, k: keyof Result): number => median((results.get(name) ?? []).map(r => r[k]))
  const lines: string[] = []
  lines.push(`zkproxy benchmark — ${new Date().toISOString()}`)
  lines.push(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}; wrk -t1 -c${connections} -d${durationS}s, ${rounds} rounds, medians`)
  lines.push('')
  // cpu: CPU time (user + system, from /proc) of the process under test per request: the
  // origin for direct, nginx for nginx, the proxy otherwise. Steadier than req/s on a shared VM.
  lines.push('case       req/s   p50 ms   p99 ms   cpu us/req   errors')
  for (const name of results.keys()) {
    const errors = (results.get(name) ?? []).reduce((a, r) => a + r.errors, 0)
    lines.push(`${name.padEnd(8)} ${med(name, 'rps').toFixed(0).padStart(7)} ${med(name, 'p50').toFixed(2).padStart(8)} ${med(name, 'p99').toFixed(2).padStart(8)} ${med(name, 'proxyUs').toFixed(1).padStart(12)} ${String(errors).padStart(8)}`)
  }
  lines.push('')
  // Two estimates of a ratio: of the medians, and the median of the rounds' own ratios
  // ("paired": both cases ran within seconds of each other in each round, so a slow phase of
  // the shared host weighs on both sides of each ratio instead of on one side of the medians).
  const ratio = (a: string, b: string, k: keyof Result = 'rps'): string => {
    if (!results.has(a) || !results.has(b)) return 'n/a'
    const as = results.get(a)!
    const bs = results.get(b)!
    const paired = median(as.map((r, i) => r[k] / (bs[i]?.[k] ?? NaN)))
    return `${(med(a, k) / med(b, k)).toFixed(2)} (paired ${paired.toFixed(2)})`
  }
  lines.push(`zkproxy / direct          throughput ${ratio('zkproxy', 'direct')}`)
  lines.push(`zkproxy / nginx           throughput ${ratio('zkproxy', 'nginx')}   (target >= 0.5)`)
  lines.push(`zkproxy / bare reply-from throughput ${ratio('zkproxy', 'bare')}   (cost of discovery+counting+failover)`)
  lines.push(`zkproxy / nginx           p99 latency ${ratio('zkproxy', 'nginx', 'p99')}   (target <= 1.5; saturated: tracks the throughput ratio)`)
  lines.push(`zkproxy / nginx           p99 latency ${ratio('zkproxy', 'nginx', 'pacedP99')}   (target <= 1.5; paced, ${connections} connections each sending every ${PACE_MS} ms: ` +
    `zkproxy ${med('zkproxy', 'pacedP99').toFixed(2)} ms, nginx ${med('nginx', 'pacedP99').toFixed(2)} ms at ${med('zkproxy', 'pacedRps').toFixed(0)} and ${med('nginx', 'pacedRps').toFixed(0)} req/s)`)
  lines.push(`zkproxy / nginx           CPU per request ${ratio('zkproxy', 'nginx', 'proxyUs')}   (process under test only)`)
  // What the runtime allows: the same ratios for the floor (Node + undici with no rules).
  lines.push(`floor / nginx             throughput ${ratio('floor', 'nginx')}, p99 saturated ${ratio('floor', 'nginx', 'p99')}, p99 paced ${ratio('floor', 'nginx', 'pacedP99')}, CPU per request ${ratio('floor', 'nginx', 'proxyUs')}   (node:http + undici, no rules)`)
  lines.push(`zkproxy / floor           throughput ${ratio('zkproxy', 'floor')}, CPU per request ${ratio('zkproxy', 'floor', 'proxyUs')}   (what zkproxy's rules cost over the runtime)`)
  lines.push(`cache hits / same bytes   throughput ${ratio('zk-hit', 'ceiling')}   (target >= 0.9; a bare node:http server sending one hit's exact head and body)`)
  lines.push(`cache hits / direct       throughput ${ratio('zk-hit', 'direct')}   (the origin, which sends fewer header fields)`)
  lines.push(`cache hits / nginx        throughput ${ratio('zk-hit', 'nginx')}   (target >= 1.5)`)
  const mirroredRatio = (a: string, b: string): string => {
    const as = blocks.get(a)
    const bs = blocks.get(b)
    if (as === undefined || bs === undefined || as.length === 0) return 'n/a'
    return median(as.map((v, i) => v / (bs[i] ?? NaN))).toFixed(2)
  }
  lines.push(`mirrored blocks (${PAIR_BLOCKS} x hit, ceiling, nginx, nginx, ceiling, hit; ${PAIR_S} s runs), medians of the blocks' ratios:`)
  lines.push(`  cache hits / same bytes ${mirroredRatio('zk-hit', 'ceiling')}   (target >= 0.9)`)
  lines.push(`  cache hits / nginx      ${mirroredRatio('zk-hit', 'nginx')}   (target >= 1.5)`)
  lines.push(`  same bytes / nginx      ${mirroredRatio('ceiling', 'nginx')}   (the most any single Node process answering from memory reaches against nginx here)`)
  lines.push(`cache misses / cache off  throughput ${ratio('zk-miss', 'zkproxy')}   (the cache on, every response no-store: what the cache costs uncacheable traffic)`)
  lines.push(`cache misses / nginx      throughput ${ratio('zk-miss', 'nginx')}`)
  lines.push(`ZooKeeper operations per proxied request: ${zkRequests === 0 ? 'n/a' : (zkOps / zkRequests).toFixed(5)}   (${zkOps} operations / ${zkRequests} requests; target < 0.01)`)
  process.stdout.write(lines.join('\n') + '\n')
}

function hasCommand (cmd: string): boolean {
  try { execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }); return true } catch { return false }
}

function nginxBinary (): string {
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx'
}

async function waitForPort (port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`)
      await r.arrayBuffer()
      return
    } catch { await new Promise(resolve => setTimeout(resolve, 50)) }
  }
  throw new Error(`nothing listens on ${port}`)
}

/** One cache hit's status, head fields (without the connection-level ones Node adds) and body. */
async function captureHit (url: string): Promise<{ status: number, fields: string[], body: string }> {
  for (let i = 0; i < 50; i++) {
    const r = await undiciRequest(url)
    const body = Buffer.from(await r.body.arrayBuffer())
    if (r.headers['x-cache'] !== 'HIT') continue
    const fields: string[] = []
    for (const [name, value] of Object.entries(r.headers)) {
      if (['connection', 'keep-alive', 'date', 'transfer-encoding'].includes(name) || value === undefined) continue
      for (const v of Array.isArray(value) ? value : [value]) fields.push(name, v)
    }
    return { status: r.statusCode, fields, body: body.toString('base64') }
  }
  throw new Error(`${url} never answered from the cache`)
}

async function waitForTargets (url: string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url)
      await r.arrayBuffer()
      if (r.status === 200) return
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${url} never routed to a target`)
}

await main()
