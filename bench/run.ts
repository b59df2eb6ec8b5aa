// `npm run bench`: one bounded run on loopback comparing, against the same two origins (bare
// node:http servers answering 1 KiB from memory), zkproxy's cases with the peers a user would
// pick instead (nginx, HAProxy, Caddy, nginx proxy_cache, Varnish) and with the runtime's own
// floor and ceiling; the cases are listed in bench/cases.ts, the ratios in bench/report.ts,
// and docs/benchmarks.md explains both. Each case runs in every round, the order rotated
// round by round, and the medians are compared as ratios measured in the same run (the
// machine is shared and noisy). The cache-hit ratios are measured once more in mirrored blocks
// of short runs. Every process is stopped by PID, also on failure and on SIGINT.
// Settings: BENCH_* variables and --json PATH (bench/knobs.ts).
import { mkdtempSync, chmodSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { onExitCleanup, stopAllTracked, trackedProcesses } from '../test/support/processes.js'
import { CASES, Fixture, type Case } from './cases.js'
import { commandLine, KnobError, parseKnobs, type Knobs } from './knobs.js'
import { descendants, findBinary, cpuSeconds, killRemaining, stopTree } from './proc.js'
import { formatReport, MIRRORED_CASES, toJson, type RoundResult } from './report.js'
import { paceScript, runWrk, type WrkResult } from './wrk.js'

const here = dirname(fileURLToPath(import.meta.url))
// The paced latency run: every connection waits PACE_MS between requests (about
// connections / PACE_MS requests per second: 5,000/s with 50 connections).
const PACE_MS = 10
// A short idle gap before each run, so a case does not inherit the load of the one before it.
const PAUSE_MS = 2000
const PAIR_PAUSE_MS = 300
const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

// SIGINT/SIGTERM/SIGHUP: the same orderly stop as at the end of a run (`stopping`, set by
// main), then exit. A second signal, or a stop that hangs, kills at once: nginx and Varnish
// workers outlive a SIGKILLed master, and a master replaces a worker killed before it, so the
// trees are recorded, the masters killed, then the recorded children; exiting then removes
// the temp dirs (test/support/processes.ts). Installed before anything starts, so these run
// before that module's own signal hooks.
let stopping: (() => Promise<void>) | undefined
let signalled = false
function killNow (code: number): never {
  const roots = trackedProcesses()
  const trees = roots.map(p => descendants(p.pid))
  for (const p of roots) p.kill()
  for (const tree of trees) killRemaining(tree)
  process.exit(code)
}
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.on(sig, () => {
    if (signalled || stopping === undefined) killNow(code)
    signalled = true
    process.stderr.write(`\n${sig}: stopping (again to kill at once)\n`)
    setTimeout(() => { killNow(code) }, 15_000).unref()
    stopping().then(() => process.exit(code), () => { killNow(code) })
  })
}

async function zkPackets (f: Fixture): Promise<number> {
  const { zk } = await f.zk()
  // Requests ZooKeeper received (reads, writes, pings): its own count of operations.
  return Number((await zk.mntr(0))['zk_packets_received'] ?? 0)
}

async function main (knobs: Knobs, command: string, wrk: string): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'zkproxy-bench-'))
  chmodSync(tmp, 0o755) // peers that drop root's privileges read their files below it
  const unregister = onExitCleanup(() => { rmSync(tmp, { recursive: true, force: true }) })
  let fixture: Fixture | undefined
  let stopped: Promise<void> | undefined
  // Once, whether the run ends, fails or is interrupted.
  const stop = stopping = async () => {
    stopped ??= (async () => {
      // Each with its own graceful signal first (nginx SIGQUIT, zkproxy SIGTERM for
      // --cpu-prof), then whatever is left, by PID.
      await Promise.all((fixture?.graceful ?? []).map(async ({ p, signal, graceMs }) => { await stopTree(p, signal, graceMs) }))
      const zk = await fixture?.zkIfStarted()
      await zk?.session.close()
      await zk?.zk.stop()
      await stopAllTracked()
      unregister()
      rmSync(tmp, { recursive: true, force: true })
    })()
    await stopped
  }
  try {
    process.stderr.write(`command: ${command}\n`)
    const f = fixture = await Fixture.start(tmp, here, knobs.proxyNodeFlags, knobs.baselineCli)
    const cases: Case[] = []
    const skipped: string[] = []
    for (const c of CASES.filter(c => knobs.cases === undefined || knobs.cases.includes(c.name))) {
      const started = await c.start(f)
      if (typeof started === 'string') {
        skipped.push(started)
        process.stderr.write(`${started}\n`)
      } else cases.push(started)
    }
    const pace = join(tmp, 'pace.lua')
    writeFileSync(pace, paceScript(PACE_MS))
    const load = async (c: Case, seconds: number, script = c.script): Promise<WrkResult> =>
      await runWrk(wrk, c.url, { seconds, connections: knobs.connections, script })

    const results = new Map<string, RoundResult[]>(cases.map(c => [c.name, []]))
    const zk = { operations: 0, requests: 0 }
    for (const c of cases) await load(c, knobs.durationS) // warm-up (JIT, keep-alive pools, caches), not counted
    for (let r = 0; r < knobs.rounds; r++) {
      // Each round starts one case later: on a shared VM, what ran just before a case (host
      // throttling, a neighbour's burst) shifts its figures, so no case always follows another.
      for (const c of [...cases.slice(r % cases.length), ...cases.slice(0, r % cases.length)]) {
        await delay(PAUSE_MS)
        const zkBefore = c.name === 'zkproxy' ? await zkPackets(f) : 0
        const cpuBefore = cpuSeconds(c.pid)
        const res = await load(c, knobs.durationS)
        const cpuUs = (cpuSeconds(c.pid) - cpuBefore) * 1e6 / res.requests
        const paced = c.paced ? await load(c, knobs.durationS, pace) : undefined
        if (c.name === 'zkproxy') {
          zk.operations += (await zkPackets(f)) - zkBefore
          zk.requests += res.requests
        }
        const round: RoundResult = {
          ...res,
          cpuUs,
          errors: res.errors + (paced?.errors ?? 0),
          pacedRps: paced?.rps ?? NaN,
          pacedP50: paced?.p50 ?? NaN,
          pacedP99: paced?.p99 ?? NaN
        }
        results.get(c.name)!.push(round)
        process.stderr.write(`round ${r + 1}/${knobs.rounds} ${c.name.padEnd(11)} ${res.rps.toFixed(0)} req/s p50 ${res.p50.toFixed(2)} ms p99 ${res.p99.toFixed(2)} ms cpu ${cpuUs.toFixed(1)} us/req` +
          (paced === undefined ? '' : ` | paced ${paced.rps.toFixed(0)} req/s p50 ${paced.p50.toFixed(2)} ms p99 ${paced.p99.toFixed(2)} ms`) +
          ` errors ${round.errors}\n`)
      }
    }
    const blocks = await mirrored(MIRRORED_CASES.flatMap(name => cases.filter(c => c.name === name)), knobs, load)
    const record = {
      command,
      date: new Date().toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version },
      settings: { durationS: knobs.durationS, rounds: knobs.rounds, connections: knobs.connections, pairBlocks: knobs.pairBlocks, pairS: knobs.pairS },
      cases: cases.map(c => ({ name: c.name, describe: c.describe })),
      skipped,
      results,
      blocks,
      zk
    }
    process.stdout.write(formatReport(record))
    if (knobs.jsonPath !== undefined) {
      writeFileSync(knobs.jsonPath, toJson(record))
      process.stderr.write(`results written to ${knobs.jsonPath}\n`)
    }
  } finally {
    await stop()
  }
}

/**
 * The cache-hit ratios once more, from mirrored blocks of short runs (A, B, C, C, B, A): the
 * speed of a shared host drifts over seconds to minutes, and within a mirrored block each case
 * sees the same average conditions, so the median of the blocks' ratios is steadier than ratios
 * of cases run up to minutes apart in the rounds. Returns each case's requests/s summed over
 * its two runs, per block.
 */
async function mirrored (cases: readonly Case[], knobs: Knobs, load: (c: Case, seconds: number) => Promise<WrkResult>): Promise<Map<string, number[]>> {
  const sums = new Map<string, number[]>(cases.map(c => [c.name, []]))
  if (cases.length < 2 || knobs.pairBlocks === 0) return new Map()
  for (let b = 0; b < knobs.pairBlocks; b++) {
    const block = new Map<string, number>()
    for (const c of [...cases, ...[...cases].reverse()]) {
      await delay(PAIR_PAUSE_MS)
      const res = await load(c, knobs.pairS)
      block.set(c.name, (block.get(c.name) ?? 0) + res.rps)
    }
    for (const [name, rps] of block) sums.get(name)!.push(rps)
    process.stderr.write(`mirrored block ${b + 1}/${knobs.pairBlocks} ${[...block].map(([n, v]) => `${n} ${(v / 2).toFixed(0)}`).join(', ')} req/s\n`)
  }
  return sums
}

const argv = process.argv.slice(2)
let knobs: Knobs
try {
  knobs = parseKnobs(process.env, argv, CASES.map(c => c.name))
} catch (err) {
  if (!(err instanceof KnobError)) throw err
  process.stderr.write(`bench: ${err.message}\n`)
  process.exit(2)
}
const wrk = findBinary('wrk')
if (wrk === undefined) {
  process.stderr.write('bench: wrk is needed (apt-get install -y wrk)\n')
  process.exit(2)
}
await main(knobs, commandLine(process.env, relative(process.cwd(), fileURLToPath(import.meta.url)), argv), wrk)
