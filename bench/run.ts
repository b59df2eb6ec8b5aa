// `npm run bench`: one bounded run on loopback comparing, against the same two origins:
//   direct      the origin itself (a bare node:http server answering 1 KiB from memory)
//   nginx       nginx (1 worker, keepalive upstream, least_conn) in front of both origins
//   bare        bare fastify + @fastify/reply-from round-robin (no discovery, counting, failover)
//   zkproxy     zkproxy with the cache off (--cache-ttl 0), targets from ZooKeeper
//   zk-hit      zkproxy with the cache on, every request a hit
// Each case runs ROUNDS times, interleaved, and the medians are compared as ratios measured in
// the same run (the machine is shared and noisy). ZooKeeper operations per proxied request are
// read from ZooKeeper's own `mntr` packet counters. Every process is stopped by PID.
// Env: BENCH_DURATION_S (default 5), BENCH_ROUNDS (3), BENCH_CONNECTIONS (50), BENCH_CASES (all).
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { startZooKeeper, type ZkCluster } from '../test/support/zookeeper.js'
import { freePort } from '../test/support/ports.js'
import { spawnTracked, stopAllTracked, type TrackedProcess } from '../test/support/processes.js'
import { CreateMode, ZkSession } from '../src/zk/index.js'

const durationS = Number(process.env['BENCH_DURATION_S'] ?? 5)
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 3)
const connections = Number(process.env['BENCH_CONNECTIONS'] ?? 50)
const here = dirname(fileURLToPath(import.meta.url))
const cli = join(here, '..', 'src', 'cli', 'main.js')

interface Result { rps: number, p50: number, p99: number, requests: number, errors: number }

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

function toMs (v: string, unit: string): number {
  const n = Number(v)
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n
}

/** One wrk run (bounded by -d); parses req/s and the 50%/99% latency lines. */
async function load (url: string): Promise<Result> {
  const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', url]
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    p.stdout.on('data', (c: Buffer) => { text += c.toString() })
    p.stderr.on('data', (c: Buffer) => { text += c.toString() })
    const timer = setTimeout(() => { p.kill('SIGKILL') }, (durationS + 30) * 1000)
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
  return { rps, p50: lat('50'), p99: lat('99'), requests, errors }
}

async function node (script: string, args: string[], name: string): Promise<TrackedProcess> {
  const p = spawnTracked(process.execPath, [script, ...args], { name })
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
  try {
    const originPorts = [await freePort(), await freePort()]
    await Promise.all(originPorts.map(async (p, i) => await node(join(here, 'origin.js'), [String(p), `origin-${i}`], `origin-${i}`)))

    const session = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000, logger: log }).start()
    await session.waitConnected(10_000)
    await session.mkdirp('/targets')
    for (const [i, p] of originPorts.entries()) {
      await session.create(`/targets/origin-${i}`, Buffer.from(JSON.stringify({ url: `http://127.0.0.1:${p}`, requests: 0 })), CreateMode.EPHEMERAL)
    }

    const cases: Array<{ name: string, url: string }> = []
    cases.push({ name: 'direct', url: `http://127.0.0.1:${originPorts[0]}/bench` })
    if (hasCommand('nginx')) {
      const port = await freePort()
      const conf = nginxConf(tmp, port, originPorts)
      nginx = spawnTracked(nginxBinary(), ['-c', conf, '-p', tmp, '-g', 'daemon off;'], { name: 'nginx' })
      await waitForPort(port)
      cases.push({ name: 'nginx', url: `http://127.0.0.1:${port}/bench` })
    }
    const barePort = await freePort()
    await node(join(here, 'bare-forward.js'), [String(barePort), ...originPorts.map(p => `http://127.0.0.1:${p}`)], 'bare')
    cases.push({ name: 'bare', url: `http://127.0.0.1:${barePort}/bench` })
    const proxyPort = await freePort()
    await node(cli, ['proxy', '--zk', zk.connectString, '--listen', `127.0.0.1:${proxyPort}`, '--admin', 'off', '--cache-ttl', '0', '--log-level', 'info'], 'zkproxy')
    await waitForTargets(`http://127.0.0.1:${proxyPort}/bench`)
    cases.push({ name: 'zkproxy', url: `http://127.0.0.1:${proxyPort}/bench` })
    const cachePort = await freePort()
    await node(cli, ['proxy', '--zk', zk.connectString, '--listen', `127.0.0.1:${cachePort}`, '--admin', 'off', '--log-level', 'info'], 'zkproxy-cache')
    await waitForTargets(`http://127.0.0.1:${cachePort}/bench`)
    cases.push({ name: 'zk-hit', url: `http://127.0.0.1:${cachePort}/bench` })

    // BENCH_CASES=bare,zkproxy runs a subset (A/B comparisons while optimising).
    const only = process.env['BENCH_CASES']?.split(',')
    if (only !== undefined) cases.splice(0, cases.length, ...cases.filter(c => only.includes(c.name)))
    const results = new Map<string, Result[]>(cases.map(c => [c.name, []]))
    let zkOps = 0
    let zkRequests = 0
    for (const c of cases) await load(c.url) // warm-up (JIT, keep-alive pools), not counted
    for (let r = 0; r < rounds; r++) {
      for (const c of cases) {
        const before = c.name === 'zkproxy' ? await zkPackets(zk) : 0
        const res = await load(c.url)
        if (c.name === 'zkproxy') {
          zkOps += (await zkPackets(zk)) - before
          zkRequests += res.requests
        }
        results.get(c.name)!.push(res)
        process.stderr.write(`round ${r + 1}/${rounds} ${c.name.padEnd(8)} ${res.rps.toFixed(0)} req/s p50 ${res.p50.toFixed(2)} ms p99 ${res.p99.toFixed(2)} ms errors ${res.errors}\n`)
      }
    }
    report(results, zkOps, zkRequests)
    await session.close()
  } finally {
    await nginx?.stop('SIGQUIT', 3000)
    await stopAllTracked()
    await zk.stop()
    rmSync(tmp, { recursive: true, force: true })
  }
}

function report (results: Map<string, Result[]>, zkOps: number, zkRequests: number): void {
  const med = (name: string, k: keyof Result): number => median((results.get(name) ?? []).map(r => r[k]))
  const lines: string[] = []
  lines.push(`zkproxy benchmark — ${new Date().toISOString()}`)
  lines.push(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}; wrk -t1 -c${connections} -d${durationS}s, ${rounds} rounds, medians`)
  lines.push('')
  lines.push('case       req/s   p50 ms   p99 ms   errors')
  for (const name of results.keys()) {
    const errors = (results.get(name) ?? []).reduce((a, r) => a + r.errors, 0)
    lines.push(`${name.padEnd(8)} ${med(name, 'rps').toFixed(0).padStart(7)} ${med(name, 'p50').toFixed(2).padStart(8)} ${med(name, 'p99').toFixed(2).padStart(8)} ${String(errors).padStart(8)}`)
  }
  lines.push('')
  const ratio = (a: string, b: string, k: keyof Result = 'rps'): string => {
    if (!results.has(a) || !results.has(b)) return 'n/a'
    return (med(a, k) / med(b, k)).toFixed(2)
  }
  lines.push(`zkproxy / direct          throughput ${ratio('zkproxy', 'direct')}`)
  lines.push(`zkproxy / nginx           throughput ${ratio('zkproxy', 'nginx')}   (target >= 0.5)`)
  lines.push(`zkproxy / bare reply-from throughput ${ratio('zkproxy', 'bare')}   (cost of discovery+counting+failover)`)
  lines.push(`zkproxy / nginx           p99 latency ${ratio('zkproxy', 'nginx', 'p99')}   (target <= 1.5)`)
  lines.push(`cache hits / direct       throughput ${ratio('zk-hit', 'direct')}   (target >= 0.9)`)
  lines.push(`cache hits / nginx        throughput ${ratio('zk-hit', 'nginx')}   (target >= 1.5)`)
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
