// `npm run soak -- --seconds 60 [--json] [--replicas 3] [--seed N]`: the chaos soak.
// A 3-node ZooKeeper ensemble, two proxies and at least three replicas, all real processes of
// the built CLI on loopback, a bounded load of GETs through both proxies (cache off, so every
// request is routed and counted), and for N seconds one fault at a time, kinds in shuffled
// rounds so that a short run still sees each: replica SIGKILL, SIGTERM and restart, ZooKeeper
// leader kill and return, the whole ensemble paused (SIGSTOP) longer than the session timeout,
// and a proxy's and a replica's session forced to expire (the process paused longer than its
// session timeout: the server ends the session; on SIGCONT it finds it expired).
// Then the invariants: no failed request; for every live target, its count in ZooKeeper equals
// the count it started with plus the requests the proxies routed to it; no znode of a dead
// process left; no process left running; the proxies' RSS and open fds back near their start.
// Exit 0 only when every invariant holds. Every process is stopped by its PID, also on failure
// and on SIGINT/SIGTERM (test/support/processes.ts kills what is left, by PID).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../test/support/zookeeper.js'
import { stopAllTracked, trackedProcesses } from '../test/support/processes.js'
import { runCli } from '../test/support/cli.js'
import { startLoad, startProxyProcess, startReplica, untilRouting, type Load, type ProxyProcess, type ReplicaProcess } from '../test/support/fleet.js'
import { until } from '../test/support/until.js'

const USAGE = 'usage: npm run soak -- --seconds N [--json] [--replicas 3] [--seed N]'
const SESSION_TIMEOUT_MS = 4000
// Longer than the session timeout, so the server really ends the session.
const PAUSE_MS = 6000
const LEADER_DOWN_MS = 3000
// After the whole ensemble was frozen, ZooKeeper's own leader election was seen to take more than
// 30 s before new sessions were accepted again (its notification interval backs off to 60 s);
// the proxies serve their last view meanwhile. Recovery times are in the report (maxRecoveryMs).
const RECOVERY_TIMEOUT_MS = 120_000
// Bounded load: at most a few hundred requests per second, so a shared machine keeps the CPU to
// start replicas and run ZooKeeper (the point is faults under load, not throughput).
const LOAD_CONCURRENCY = 4
const LOAD_PAUSE_MS = 10
const START_TIMEOUT_MS = 30_000
// One probe of the fleet's state; a server that answers nothing must not stall the whole wait.
const PROBE_TIMEOUT_MS = 3000

async function bounded<T> (p: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs) })])
  } finally {
    clearTimeout(timer)
  }
}
// "Back near their start" for the proxies, measured after the load stopped.
const RSS_SLACK_BYTES = 64 * 1024 * 1024
const FD_SLACK = 16

type FaultKind = 'replica-kill' | 'replica-term' | 'replica-restart' | 'zk-leader-kill' | 'zk-pause' | 'proxy-expiry' | 'replica-expiry'
const KINDS: readonly FaultKind[] = ['replica-kill', 'replica-term', 'replica-restart', 'zk-leader-kill', 'zk-pause', 'proxy-expiry', 'replica-expiry']

interface Options { seconds: number, json: boolean, replicas: number, seed: number }

function parseOptions (argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string' }, json: { type: 'boolean', default: false }, replicas: { type: 'string', default: '3' }, seed: { type: 'string' }, help: { type: 'boolean', default: false } },
    strict: true
  })
  if (values.help === true) { process.stdout.write(`${USAGE}\n`); process.exit(0) }
  const whole = (name: string, v: string | undefined, min: number, max: number): number => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new Error(`--${name} must be a whole number from ${min} to ${max}`)
    return Number(v)
  }
  return {
    seconds: whole('seconds', values.seconds, 10, 86_400),
    json: values.json === true,
    replicas: whole('replicas', values.replicas, 3, 10),
    seed: values.seed === undefined ? Date.now() % 1_000_000 : whole('seed', values.seed, 0, 2 ** 31)
  }
}

/** mulberry32: a seeded random source, so a failing run can be replayed with --seed. */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Replica {
  readonly name: string
  proc: ReplicaProcess
  port: number
  /** The count its (current process's) first node started with. */
  startCount: number
  /** The proxies' responses for this name before the current process started (same-name restarts). */
  baseline: number
}

interface ProxyStats { readonly id: string, rssStart: number, rssEnd: number, fdsStart: number, fdsEnd: number }

export interface SoakReport {
  seconds: number
  seed: number
  requests: number
  errors: number
  faults: Record<string, number>
  countsExact: boolean
  mismatches: Array<{ target: string, zookeeper: number | null, expected: number }>
  leftoverZnodes: string[]
  processesLeft: number
  proxies: ProxyStats[]
  resourcesBack: boolean
  dropped: number
  carried: number
  heldRemovals: number
  /** The longest wait, after a fault, until every live replica was registered and routed to. */
  maxRecoveryMs: number
  failures: string[]
  /** Each fault with the wall-clock time it began, to read failures against. */
  timeline: string[]
  ok: boolean
}

function log (opts: Options, line: string): void {
  // With --json the last stdout line is the report: everything human goes to stderr.
  ;(opts.json ? process.stderr : process.stdout).write(`${line}\n`)
}

async function metrics (admin: string): Promise<string> {
  const r = await request(`${admin}/metrics`)
  return await r.body.text()
}

/** Sum of a metric's samples, optionally only those whose labels include `label`. */
function sample (text: string, name: string, label?: string): number {
  let n = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name} `) && !line.startsWith(`${name}{`)) continue
    if (label !== undefined && !line.includes(label)) continue
    n += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return n
}

function rss (pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
  return kb * 1024
}

function fds (pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

function startCountOf (proc: ReplicaProcess): number | undefined {
  const lines = proc.logs().filter(l => typeof l.msg === 'string' && l.msg.startsWith('first registration: count starts at'))
  const last = lines.at(-1)
  return last === undefined ? undefined : Number(last['requests'])
}

async function responsesFor (proxies: readonly ProxyProcess[], name: string): Promise<number> {
  let n = 0
  for (const p of proxies) n += sample(await metrics(p.admin!), 'zkproxy_requests_total', `target="${name}"`)
  return n
}

async function run (opts: Options): Promise<SoakReport> {
  const random = seeded(opts.seed)
  const faults: Record<string, number> = Object.fromEntries(KINDS.map(k => [k, 0]))
  const stateDir = mkdtempSync(join(tmpdir(), 'zkproxy-soak-'))
  let zk: ZkCluster | undefined
  let load: Load | undefined
  try {
    log(opts, `soak: ${opts.seconds} s, seed ${opts.seed}; starting a 3-node ZooKeeper ensemble`)
    zk = await startZooKeeper({ nodes: 3 })
    const connect = zk.connectString
    // ZooKeeper is read through `zkproxy status --json`, a fresh process and session per look:
    // a long-lived session in this process, the one doing the pausing and killing, was seen to
    // stay disconnected after a fault while every process of the fleet had reconnected.
    const readZk = async (): Promise<{ counts: Map<string, number>, proxies: string[] }> => {
      const r = await runCli(['status', '--zk', connect, '--json', '--timeout-ms', String(PROBE_TIMEOUT_MS)], { timeoutMs: PROBE_TIMEOUT_MS * 2 })
      const text = r.output.slice(r.output.indexOf('{'))
      const report = JSON.parse(text) as { targets: Array<{ name: string, requests: number }>, proxies: Array<{ id: string }> }
      return { counts: new Map(report.targets.map(t => [t.name, t.requests])), proxies: report.proxies.map(p => p.id) }
    }
    const replicaArgs = ['--session-timeout-ms', String(SESSION_TIMEOUT_MS)]
    let seq = 0
    const replicas = new Map<string, Replica>()
    const addReplica = async (name = `r${++seq}`, port = 0, baseline = 0): Promise<Replica> => {
      const proc = await startReplica(connect, name, [...replicaArgs, ...(port === 0 ? [] : ['--port', String(port)])], { timeoutMs: START_TIMEOUT_MS })
      const r: Replica = { name, proc, port: Number(new URL(proc.url).port), startCount: NaN, baseline }
      replicas.set(name, r)
      return r
    }
    for (let i = 0; i < opts.replicas; i++) await addReplica()
    // Idle keep-alive connections outlive a proxy's pause: with the default 5 s, the timer that
    // expired during a 6 s pause closes, on resume, a connection whose next request is already
    // in the socket (the client sees ECONNRESET), a race of node:http the pause makes certain.
    const proxyArgs = ['--admin', '127.0.0.1:0', '--session-timeout-ms', String(SESSION_TIMEOUT_MS), '--keep-alive-timeout-ms', '30000']
    const proxies = [
      await startProxyProcess(connect, [...proxyArgs, '--state-file', join(stateDir, 'p1.json')], { timeoutMs: START_TIMEOUT_MS }),
      await startProxyProcess(connect, [...proxyArgs, '--state-file', join(stateDir, 'p2.json')], { timeoutMs: START_TIMEOUT_MS })
    ]
    const proxyIds = proxies.map(p => String(p.ready['id']))
    for (const p of proxies) await untilRouting(p.url, replicas.size)
    log(opts, `soak: ${replicas.size} replicas and ${proxies.length} proxies up; load on`)

    load = startLoad(proxies.map(p => p.url), { concurrency: LOAD_CONCURRENCY, pauseMs: LOAD_PAUSE_MS, maxMs: (opts.seconds + 120) * 1000, maxRequests: 50_000_000 })
    const warm = load.result.ok
    await until(() => load!.result.ok >= warm + 200, { timeoutMs: 20_000, message: 'warm-up load' })
    const proxyStats: ProxyStats[] = proxies.map((p, i) => ({ id: proxyIds[i]!, rssStart: rss(p.proc.pid), rssEnd: 0, fdsStart: fds(p.proc.pid), fdsEnd: 0 }))

    const live = (): Replica[] => [...replicas.values()].filter(r => r.proc.proc.running)
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!
    /** Healthy again: every live replica registered, both proxies routing to all of them. */
    const recovered = async (): Promise<void> => {
      let why = ''
      await until(async () => {
        const names = live().map(r => r.name)
        const { counts } = await readZk()
        const missing = names.filter(n => !counts.has(n))
        if (missing.length > 0) { why = `not registered: ${missing.join(', ')}`; return false }
        for (const p of proxies) {
          const rows = await (await request(`${p.admin!}/targets`, { headersTimeout: 2000, bodyTimeout: 2000 })).body.json() as Array<{ name: string }>
          const unseen = names.filter(n => !rows.some(r => r.name === n))
          if (unseen.length > 0) { why = `proxy ${p.url} does not route to ${unseen.join(', ')}`; return false }
        }
        return true
      }, { timeoutMs: RECOVERY_TIMEOUT_MS, intervalMs: 200, message: 'the fleet to recover' }).catch(async (err: unknown) => {
        throw new Error(`${(err as Error).message} (${why}; ${await diagnose()}); errors so far: ${load?.result.failures.slice(0, 3).join(' | ') ?? ''}`)
      })
    }
    /** What the ensemble and the proxies say, for a failure message. */
    const diagnose = async (): Promise<string> => {
      const modes: string[] = []
      for (let i = 0; i < zk!.size; i++) modes.push(await bounded(zk!.fourLetter(i, 'srvr'), PROBE_TIMEOUT_MS).then(t => /Mode: (\w+)/.exec(t)?.[1] ?? '?', (e: unknown) => `error ${(e as Error).message}`))
      const health: string[] = []
      for (const p of proxies) health.push(await bounded(request(`${p.admin!}/healthz`).then(async r => await r.body.text()), PROBE_TIMEOUT_MS).catch((e: unknown) => `error ${(e as Error).message}`))
      return `ensemble ${modes.join(',')}; proxies ${health.join(' ')}`
    }
    const pause = async (msToWait: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, msToWait)) }

    const timeline: string[] = []
    const at = (what: string): void => { timeline.push(`${new Date().toISOString().slice(11, 23)} ${what}`) }
    const inject = async (kind: FaultKind): Promise<void> => {
      switch (kind) {
        case 'replica-kill': {
          const r = pick(live())
          at(`${kind} ${r.name}`)
          r.proc.proc.kill()
          await r.proc.proc.exited
          await addReplica()
          break
        }
        case 'replica-term': {
          const r = pick(live())
          at(`${kind} ${r.name}`)
          await r.proc.proc.stop('SIGTERM', 10_000)
          await addReplica()
          break
        }
        case 'replica-restart': {
          // Same name and port: a deploy of the same instance. Its old node is deleted first
          // (SIGTERM), so the new process is a new registration starting at the floor.
          const r = pick(live())
          at(`${kind} ${r.name}`)
          await r.proc.proc.stop('SIGTERM', 10_000)
          replicas.delete(r.name)
          await addReplica(r.name, r.port, await responsesFor(proxies, r.name))
          break
        }
        case 'zk-leader-kill': {
          const leader = await zk!.leader()
          at(`${kind} node ${leader}`)
          await zk!.killNode(leader)
          await pause(LEADER_DOWN_MS)
          await zk!.startNode(leader)
          break
        }
        case 'zk-pause': {
          at(kind)
          for (let i = 0; i < zk!.size; i++) zk!.pauseNode(i)
          try { await pause(PAUSE_MS) } finally { for (let i = 0; i < zk!.size; i++) zk!.resumeNode(i) }
          break
        }
        case 'proxy-expiry': {
          const p = pick(proxies)
          at(`${kind} ${p.url}`)
          p.proc.pause()
          try { await pause(PAUSE_MS) } finally { p.proc.resume() }
          break
        }
        case 'replica-expiry': {
          const r = pick(live())
          at(`${kind} ${r.name}`)
          r.proc.proc.pause()
          try { await pause(PAUSE_MS) } finally { r.proc.proc.resume() }
          break
        }
      }
      faults[kind] = (faults[kind] ?? 0) + 1
    }

    const startedAt = Date.now()
    const endAt = startedAt + opts.seconds * 1000
    let current = 'none'
    let maxRecoveryMs = 0
    let slowest = ''
    const progress = setInterval(() => {
      const s = Math.round((Date.now() - startedAt) / 1000)
      const done = Object.entries(faults).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ')
      const line = `[${String(s).padStart(4)}/${opts.seconds} s] requests ${load!.result.ok}  errors ${load!.result.failures.length}  now: ${current}  faults: ${done === '' ? '-' : done}`
      if (process.stderr.isTTY) process.stderr.write(`\r${line.padEnd(120)}`)
      else if (s % 5 === 0) process.stderr.write(`${line}\n`)
    }, 1000)
    try {
      let round: FaultKind[] = []
      while (Date.now() < endAt) {
        if (round.length === 0) round = [...KINDS].sort(() => random() - 0.5)
        const kind = round.shift()!
        current = kind
        await inject(kind)
        current = 'recovering'
        const recoveringSince = Date.now()
        await recovered()
        const took = Date.now() - recoveringSince
        if (took > maxRecoveryMs) { maxRecoveryMs = took; slowest = kind }
        current = 'steady'
        await pause(1000 + random() * 1500)
      }
    } finally {
      clearInterval(progress)
      if (process.stderr.isTTY) process.stderr.write('\n')
    }

    if (slowest !== '') log(opts, `soak: slowest recovery ${maxRecoveryMs} ms, after ${slowest}`)
    const result = await load.stop()
    load = undefined
    for (const r of replicas.values()) if (Number.isNaN(r.startCount)) r.startCount = startCountOf(r.proc) ?? NaN
    // Everything counted is written: the proxies' unflushed counts drain to zero.
    await until(async () => {
      for (const p of proxies) if (sample(await metrics(p.admin!), 'zkproxy_count_unflushed') !== 0) return false
      return true
    }, { timeoutMs: 20_000, message: 'the proxies to flush their counts' })

    // Counts: for each live target, what it started with plus what the proxies routed to it.
    const { counts } = await readZk()
    const mismatches: SoakReport['mismatches'] = []
    for (const r of live()) {
      const expected = r.startCount + await responsesFor(proxies, r.name) - r.baseline
      const actual = counts.get(r.name)
      if (actual !== expected) mismatches.push({ target: r.name, zookeeper: actual ?? null, expected })
    }

    // Leftovers: killed replicas' nodes go when their sessions time out; nothing else may stay.
    const wanted = new Set(live().map(r => `/targets/${r.name}`).concat(proxyIds.map(id => `/proxies/${id}`)))
    let leftoverZnodes: string[] = []
    await until(async () => {
      const seen = await readZk()
      const present = [...[...seen.counts.keys()].map(n => `/targets/${n}`), ...seen.proxies.map(n => `/proxies/${n}`)]
      leftoverZnodes = present.filter(p => !wanted.has(p))
      return leftoverZnodes.length === 0
    }, { timeoutMs: SESSION_TIMEOUT_MS * 3, message: 'no znode of a dead process' }).catch(() => {})

    // Resources: keep-alive sockets of the load and of dead targets close once the load stops.
    await until(() => proxies.every((p, i) => fds(p.proc.pid) <= proxyStats[i]!.fdsStart + FD_SLACK), { timeoutMs: 15_000, intervalMs: 250 }).catch(() => {})
    for (const [i, p] of proxies.entries()) {
      proxyStats[i]!.rssEnd = rss(p.proc.pid)
      proxyStats[i]!.fdsEnd = fds(p.proc.pid)
    }
    const resourcesBack = proxyStats.every(s => s.rssEnd <= s.rssStart + RSS_SLACK_BYTES && s.fdsEnd <= s.fdsStart + FD_SLACK)
    let dropped = 0
    let carried = 0
    let heldRemovals = 0
    for (const p of proxies) {
      const m = await metrics(p.admin!)
      dropped += sample(m, 'zkproxy_count_dropped_total')
      carried += sample(m, 'zkproxy_count_carried_total')
      heldRemovals += sample(m, 'zkproxy_target_removals_deferred_total')
    }

    // Stop everything by PID: proxies and replicas gracefully, then ZooKeeper.
    await Promise.all(proxies.map(async p => await p.proc.stop('SIGTERM', 10_000)))
    await Promise.all(live().map(async r => await r.proc.proc.stop('SIGTERM', 10_000)))
    await zk.stop()
    zk = undefined
    const processesLeft = trackedProcesses().length

    const report: SoakReport = {
      seconds: opts.seconds,
      seed: opts.seed,
      requests: result.ok + result.failures.length,
      errors: result.failures.length,
      faults,
      countsExact: mismatches.length === 0,
      mismatches,
      leftoverZnodes,
      processesLeft,
      proxies: proxyStats,
      resourcesBack,
      dropped,
      carried,
      heldRemovals,
      maxRecoveryMs,
      failures: result.failures.slice(0, 5),
      timeline,
      ok: false
    }
    report.ok = report.errors === 0 && report.countsExact && leftoverZnodes.length === 0 && processesLeft === 0 && resourcesBack
    return report
  } finally {
    if (load !== undefined) await load.stop().catch(() => undefined)
    await stopAllTracked()
    await zk?.stop()
    rmSync(stateDir, { recursive: true, force: true })
  }
}

function human (r: SoakReport): string {
  const mb = (b: number): string => (b / 1024 / 1024).toFixed(1)
  const lines = [
    `soak ${r.ok ? 'PASSED' : 'FAILED'} after ${r.seconds} s (seed ${r.seed})`,
    `  requests        ${r.requests}, errors ${r.errors}${r.failures.length > 0 ? ` (first: ${r.failures.join(' | ')})` : ''}`,
    `  faults          ${Object.entries(r.faults).map(([k, n]) => `${k} ${n}`).join(', ')}`,
    `  counts exact    ${r.countsExact ? 'yes' : `no: ${JSON.stringify(r.mismatches)}`} (carried ${r.carried}, dropped ${r.dropped}, removals held by the grace ${r.heldRemovals})`,
    `  leftover znodes ${r.leftoverZnodes.length === 0 ? 'none' : r.leftoverZnodes.join(', ')}`,
    `  slowest recovery ${r.maxRecoveryMs} ms (every live replica registered and routed to again)`,
    `  processes left  ${r.processesLeft}`,
    ...r.proxies.map(p => `  proxy ${p.id}  RSS ${mb(p.rssStart)} → ${mb(p.rssEnd)} MB, fds ${p.fdsStart} → ${p.fdsEnd}`),
    ...(r.errors > 0 ? ['  faults, in order:', ...r.timeline.map(t => `    ${t}`)] : [])
  ]
  return lines.join('\n')
}

async function main (): Promise<void> {
  let opts: Options
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n${USAGE}\n`)
    process.exit(2)
  }
  // test/support/processes.ts SIGKILLs every process we started, by PID, on these signals;
  // this handler only says so and sets the exit code.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nsoak: ${sig}: stopped every process it started\n`)
      process.exit(130)
    })
  }
  try {
    const report = await run(opts)
    log(opts, human(report))
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`)
    process.exitCode = report.ok ? 0 : 1
  } catch (err) {
    process.stderr.write(`soak: failed: ${(err as Error).stack ?? String(err)}\n`)
    if (opts.json) process.stdout.write(`${JSON.stringify({ seconds: opts.seconds, seed: opts.seed, ok: false, error: (err as Error).message })}\n`)
    process.exitCode = 1
  }
}

await main()
