// `npm run attack -- [--seconds 10] [--scale 1] [--zk HOST:PORT] [-- PROXY FLAGS...]`
// `npm run attack -- --url http://127.0.0.1:9000 [--pid PID] [--big-path /big] [--slow-path /slow] ...`
//
// The hostile clients of docs/security.md "Hostile and slow clients", one after another, each
// for --seconds while a well-behaved client on 127.0.0.1 probes: for each attack it prints what
// that client saw meanwhile (answers, how many under a second, failures, the slowest), the
// proxy's RSS growth and what stayed in flight afterwards. For operators tuning the limits
// (pass proxy flags after `--`), and for us.
//
// Without --url it starts everything itself and stops it by PID at the end, also on failure or
// Ctrl-C: a ZooKeeper from the local installation (or uses --zk), one target (node:http in this
// worker thread: /big 50 MB uncacheable, /slow 1 s, /upload, /probe) and the built proxy as a child
// process. With --url it attacks a running proxy (its RSS is read from /proc/--pid when given).
// Loopback only; every attack is bounded in clients and time.
import { Worker } from 'node:worker_threads'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import {
  nonReadingClients, pipelineAndLeave, pipelinedGets, probe, resettingClients, slowUploads, type Attack, type ProbeReport, type Target
} from '../test/support/attacks.js'
import { startZooKeeper, type ZkCluster } from '../test/support/zookeeper.js'
import { freePorts } from '../test/support/ports.js'
import { startCli } from '../test/support/cli.js'
import type { TrackedProcess } from '../test/support/processes.js'
import { CreateMode } from '../src/zk/index.js'
import { closeAllSessions, connectSession } from '../test/support/zk-client.js'

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    url: { type: 'string' },
    pid: { type: 'string' },
    zk: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    scale: { type: 'string', default: '1' },
    'big-path': { type: 'string', default: '/big' },
    'slow-path': { type: 'string', default: '/slow' },
    'upload-path': { type: 'string', default: '/upload' },
    'probe-path': { type: 'string', default: '/probe' },
    help: { type: 'boolean', short: 'h' }
  }
})

if (args.help === true) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter(l => l.startsWith('//')).map(l => l.slice(3)).join('\n'))
  process.exit(0)
}

function bounded (name: string, v: string, min: number, max: number): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be between ${min} and ${max}, got "${v}"`)
  return n
}

const seconds = bounded('seconds', args.seconds, 1, 120)
const scale = bounded('scale', args.scale, 0.01, 1)
const count = (n: number): number => Math.max(1, Math.round(n * scale))

/**
 * The target, in a worker thread: its own event loop, so that pumping 50 MB answers never
 * delays the well-behaved client's probes, which run on this thread. Plain JavaScript (eval'd).
 */
const TARGET_SOURCE = `
const { createServer } = require('node:http')
const { parentPort } = require('node:worker_threads')
const chunk = Buffer.alloc(64 * 1024, 'x')
function stream (res, total) {
  res.setHeader('content-length', String(total))
  let sent = 0
  const pump = () => {
    while (sent < total) {
      sent += chunk.length
      if (!res.write(chunk)) { res.once('drain', pump); return }
    }
    res.end()
  }
  pump()
}
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const path = (req.url || '/').split('?')[0]
    res.setHeader('cache-control', 'no-store')
    if (path === '/big') stream(res, 50 * 1000 * 1000)
    else if (path === '/slow') setTimeout(() => { res.end('slow') }, 1000)
    else res.end('ok')
  })
})
server.listen(0, '127.0.0.1', () => { parentPort.postMessage(server.address().port) })
parentPort.on('message', () => { server.closeAllConnections(); server.close(() => { parentPort.close() }) })
`

async function startTarget (): Promise<{ url: string, stop: () => Promise<void> }> {
  const worker = new Worker(TARGET_SOURCE, { eval: true })
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise<void>(resolve => worker.once('exit', () => { resolve() }))
      worker.postMessage('stop')
      const killer = setTimeout(() => { void worker.terminate() }, 2000)
      await exited
      clearTimeout(killer)
    }
  }
}

interface Proxy { url: string, rssMiB: () => number | undefined, inFlight: () => Promise<number | undefined> }

function rssOf (pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch { return undefined }
}

const cleanups: Array<() => Promise<void>> = []
async function cleanup (): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((err: unknown) => { console.error(`cleanup: ${String(err)}`) })
}
process.once('SIGINT', () => { void cleanup().finally(() => process.exit(130)) })

async function ownProxy (): Promise<Proxy> {
  let zk: ZkCluster | undefined
  let connect = args.zk
  if (connect === undefined) {
    zk = await startZooKeeper({ nodes: 1 })
    const started = zk
    cleanups.push(async () => { await started.stop() })
    connect = zk.connectString
  }
  const target = await startTarget()
  cleanups.push(target.stop)
  const targetUrl = target.url
  const targetsPath = `/attack-${process.pid}`
  const session = await connectSession(connect)
  cleanups.push(async () => { await closeAllSessions() })
  await session.mkdirp(targetsPath)
  await session.create(`${targetsPath}/t`, Buffer.from(JSON.stringify({ url: targetUrl, requests: 0 })), CreateMode.EPHEMERAL)
  const [port, admin] = await freePorts(2) as [number, number]
  const started = await startCli(['proxy', '--zk', connect, '--targets-path', targetsPath, '--listen', `127.0.0.1:${port}`,
    '--admin', `127.0.0.1:${admin}`, '--cache-ttl', '0', ...positionals], 'proxy listening')
    .catch(async (err: unknown) => { await cleanup(); throw err })
  const proc: TrackedProcess = started.proc
  cleanups.push(async () => {
    proc.signal('SIGTERM')
    const killer = setTimeout(() => { proc.kill() }, 5000)
    await proc.exited
    clearTimeout(killer)
  })
  const url = `http://127.0.0.1:${port}`
  // Ready once the proxy has its view of the one target.
  for (let i = 0; i < 100; i++) {
    const r = await request(`${url}/probe`).catch(() => undefined)
    await r?.body.dump()
    if (r?.statusCode === 200) break
    await sleep(100)
  }
  return {
    url,
    rssMiB: () => rssOf(proc.pid),
    inFlight: async () => {
      const r = await request(`http://127.0.0.1:${admin}/metrics`)
      const text = await r.body.text()
      return [...text.matchAll(/^zkproxy_target_in_flight_requests\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0)
    }
  }
}

function runningProxy (url: string): Proxy {
  const u = new URL(url)
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(u.hostname)) throw new Error(`--url must be a loopback address, got ${u.hostname}`)
  const pid = args.pid === undefined ? undefined : bounded('pid', args.pid, 1, 2 ** 22)
  return { url: url.replace(/\/$/, ''), rssMiB: () => pid === undefined ? undefined : rssOf(pid), inFlight: async () => undefined }
}

interface Row { attack: string, probes: ProbeReport, rssGrowthMiB: number | undefined, inFlightAfter: number | undefined, attackerStatuses: string }

async function run (proxy: Proxy, make: (t: Target) => Attack): Promise<Row> {
  const u = new URL(proxy.url)
  const t: Target = { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port), hostHeader: u.host }
  const rssBefore = proxy.rssMiB()
  let rssPeak = rssBefore ?? 0
  const attack = make(t)
  const probes: ProbeReport = { answers: 0, underOneSecond: 0, failures: 0, worstMs: 0 }
  const until = performance.now() + seconds * 1000
  try {
    while (performance.now() < until) {
      const p = await probe(`${proxy.url}${args['probe-path']}`, 1, 5000)
      probes.answers += p.answers
      probes.underOneSecond += p.underOneSecond
      probes.failures += p.failures
      probes.worstMs = Math.max(probes.worstMs, p.worstMs)
      rssPeak = Math.max(rssPeak, proxy.rssMiB() ?? 0)
      await sleep(200)
    }
  } finally {
    attack.stop()
  }
  // What stays counted once the attackers are gone (the proxy's metrics), after a second to settle.
  await sleep(1000)
  return {
    attack: attack.name,
    probes,
    rssGrowthMiB: rssBefore === undefined ? undefined : rssPeak - rssBefore,
    inFlightAfter: await proxy.inFlight().catch(() => undefined),
    attackerStatuses: [...attack.statuses].map(([s, n]) => `${s}×${n}`).join(' ')
  }
}

async function main (): Promise<void> {
  const proxy = args.url === undefined ? await ownProxy() : runningProxy(args.url)
  const big = args['big-path']
  const slow = args['slow-path']
  const attacks: Array<(t: Target) => Attack> = [
    t => nonReadingClients(t, count(260), big),
    t => slowUploads(t, count(300), args['upload-path'], 5000),
    t => pipelinedGets(t, count(3000), slow),
    t => resettingClients(t, count(300), args['upload-path']),
    t => pipelineAndLeave(t, count(1000), big)
  ]
  console.log(`attacking ${proxy.url} for ${seconds} s each (scale ${scale}); a well-behaved client probes ${args['probe-path']} from 127.0.0.1`)
  for (const make of attacks) {
    const row = await run(proxy, make)
    const p = row.probes
    const rss = row.rssGrowthMiB === undefined ? 'n/a (give --pid)' : `${row.rssGrowthMiB.toFixed(1)} MiB`
    console.log(`${row.attack}: probes ${p.answers} answered, ${p.underOneSecond}/${p.answers + p.failures} under 1 s, ${p.failures} failed, slowest ${p.worstMs.toFixed(0)} ms; ` +
      `proxy RSS growth ${rss}; in flight after ${row.inFlightAfter ?? 'n/a'}; attackers saw ${row.attackerStatuses || 'no answer'}`)
  }
}

main().then(cleanup, async (err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err))
  await cleanup()
  process.exitCode = 1
})
