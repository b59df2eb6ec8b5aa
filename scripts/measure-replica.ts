// Measures how long `zkproxy replica` takes from process start to a visible znode, and from
// SIGTERM to the znode's removal, against a ZooKeeper this script starts itself (test/support).
//   npm run build && node dist/scripts/measure-replica.js [--runs 5]
// One unmeasured warm-up run first (cold file cache, JIT), then `runs` measured ones; prints
// one line per run, the medians, and a JSON summary line. Every process is stopped by PID.
import { performance } from 'node:perf_hooks'
import pino from 'pino'
import { ZkSession, watchData, type DataValue } from '../src/zk/index.js'
import { cliPath, parseLogLines } from '../test/support/cli.js'
import { spawnTracked, stopAllTracked } from '../test/support/processes.js'
import { startZooKeeper, type ZkCluster } from '../test/support/zookeeper.js'

interface Run {
  /** Process start → 'replica listening' logged (Node start-up, module loading, listen). */
  listenMs: number
  /** Process start → znode visible to another ZooKeeper client. */
  visibleMs: number
  /** SIGTERM → znode gone for another client. */
  removedMs: number
  /** SIGTERM → process exited (includes --drain-ms). */
  exitMs: number
}

const log = pino({ level: 'silent' })
const DRAIN_MS = 500
const STEP_TIMEOUT_MS = 30_000

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Resolves with the performance.now() at which `pred` first holds for the watched node. */
function whenNode (session: ZkSession, path: string, pred: (v: DataValue | null) => boolean): { at: Promise<number>, close: () => void } {
  let done!: (t: number) => void
  const at = new Promise<number>((resolve) => { done = resolve })
  // A watch, not polling: the notification arrives within a round trip of the change.
  const w = watchData(session, path, (v) => { if (pred(v)) done(performance.now()) }, log)
  return { at, close: () => { w.close() } }
}

async function deadline<T> (p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const limit = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out waiting for ${what}`)) }, STEP_TIMEOUT_MS) })
  try {
    return await Promise.race([p, limit])
  } finally {
    clearTimeout(timer)
  }
}

async function once (zk: ZkCluster, observer: ZkSession, i: number): Promise<Run> {
  const name = `measure-${i}`
  const path = `/targets/${name}`
  const appear = whenNode(observer, path, v => v !== null)
  const startedAt = Date.now()
  const t0 = performance.now()
  const proc = spawnTracked(process.execPath, [cliPath(), 'replica', '--zk', zk.connectString, '--port', '0', '--name', name, '--drain-ms', String(DRAIN_MS), '--revision', 'measure'], { name })
  try {
    const visibleAt = await deadline(appear.at, `${path} to appear`)
    appear.close()
    const listening = parseLogLines(proc.output()).find(l => l.msg === 'replica listening')
    const disappear = whenNode(observer, path, v => v === null)
    const t1 = performance.now()
    proc.signal('SIGTERM')
    const removedAt = await deadline(disappear.at, `${path} to go`)
    disappear.close()
    const exit = await deadline(proc.exited, 'the replica to exit')
    if (exit.code !== 0) throw new Error(`replica exited with ${String(exit.code)}:\n${proc.tail()}`)
    return {
      listenMs: listening === undefined ? NaN : Date.parse(String(listening['time'])) - startedAt,
      visibleMs: visibleAt - t0,
      removedMs: removedAt - t1,
      exitMs: performance.now() - t1
    }
  } finally {
    appear.close()
    if (proc.running) await proc.stop('SIGKILL')
  }
}

async function main (): Promise<void> {
  const runsArg = process.argv.indexOf('--runs')
  const runs = runsArg === -1 ? 5 : Number(process.argv[runsArg + 1])
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer')
  // Always our own server: an external ensemble would measure someone else's network.
  delete process.env['ZK_CONNECT']
  const zk = await startZooKeeper({ nodes: 1 })
  const observer = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000, logger: log }).start()
  try {
    await observer.waitConnected(STEP_TIMEOUT_MS)
    await once(zk, observer, 0) // warm-up, not counted
    const results: Run[] = []
    for (let i = 1; i <= runs; i++) {
      const r = await once(zk, observer, i)
      results.push(r)
      console.log(`run ${i}: listening ${r.listenMs.toFixed(0)} ms, znode visible ${r.visibleMs.toFixed(0)} ms after start; znode removed ${r.removedMs.toFixed(1)} ms after SIGTERM, exit ${r.exitMs.toFixed(0)} ms after (drain ${DRAIN_MS} ms)`)
    }
    const summary = {
      runs,
      node: process.version,
      medianStartToListeningMs: median(results.map(r => r.listenMs)),
      medianStartToZnodeMs: median(results.map(r => r.visibleMs)),
      medianSigtermToRemovalMs: median(results.map(r => r.removedMs)),
      medianSigtermToExitMs: median(results.map(r => r.exitMs)),
      drainMs: DRAIN_MS
    }
    console.log(`median of ${runs}: start → znode visible ${summary.medianStartToZnodeMs.toFixed(0)} ms (listening at ${summary.medianStartToListeningMs.toFixed(0)} ms); SIGTERM → znode removed ${summary.medianSigtermToRemovalMs.toFixed(1)} ms`)
    console.log(JSON.stringify(summary))
  } finally {
    await observer.close()
    await stopAllTracked()
    await zk.stop()
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
