// The benchmark's cases and the processes behind them. Only what the selected cases need is
// started (BENCH_CASES=zkproxy,zk-post starts no peer and no cache proxy); processes shared by
// several cases (ZooKeeper, each zkproxy process) start once. Every process is tracked and
// stopped by its PID, peers with their whole process tree.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import pino from 'pino'
import { request } from 'undici'
import { startZooKeeper, type ZkCluster } from '../test/support/zookeeper.js'
import { freePort } from '../test/support/ports.js'
import { describeExit, spawnTracked, type TrackedProcess } from '../test/support/processes.js'
import { CreateMode, ZkSession } from '../src/zk/index.js'
import { PEERS, skipLine, type Peer } from './peers.js'
import { findBinary, stopTree } from './proc.js'
import { hostScript, postScript } from './wrk.js'

/** A case ready to measure. */
export interface Case {
  readonly name: string
  readonly describe: string
  readonly url: string
  /** The process under test, whose CPU time is read (undefined: none of ours). */
  readonly pid: number | undefined
  /** A wrk Lua script for every request of this case (the POST body). */
  readonly script?: string
  /** Also measured paced (a latency run well below saturation). */
  readonly paced: boolean
}

/** The request every case sends: a path the origins answer with 1 KiB, cacheable. */
const PATH = '/bench'
const POST_BYTES = 1024

/** What the cases share: the origins, the temp dir, and what is started on first use. */
export class Fixture {
  readonly tmp: string
  readonly here: string
  readonly originPorts: readonly number[]
  readonly origins: readonly TrackedProcess[]
  readonly proxyNodeFlags: readonly string[]
  /** BENCH_BASELINE_CLI: another zkproxy build to measure beside this one. */
  readonly baselineCli: string | undefined
  /** Stopped first, each with its own signal, before the catch-all SIGKILL. */
  readonly graceful: Array<{ p: TrackedProcess, signal: NodeJS.Signals, graceMs: number }> = []
  #zk: Promise<{ zk: ZkCluster, session: ZkSession }> | undefined
  #proxies = new Map<string, Promise<{ url: string, p: TrackedProcess }>>()

  private constructor (tmp: string, here: string, originPorts: number[], origins: TrackedProcess[], proxyNodeFlags: readonly string[], baselineCli: string | undefined) {
    this.baselineCli = baselineCli
    this.tmp = tmp
    this.here = here
    this.originPorts = originPorts
    this.origins = origins
    this.proxyNodeFlags = proxyNodeFlags
  }

  static async start (tmp: string, here: string, proxyNodeFlags: readonly string[], baselineCli?: string): Promise<Fixture> {
    const ports = [await freePort(), await freePort()]
    const origins = await Promise.all(ports.map(async (p, i) => await nodeScript(join(here, 'origin.js'), [String(p), `origin-${i}`], `origin-${i}`)))
    return new Fixture(tmp, here, ports, origins, proxyNodeFlags, baselineCli)
  }

  /** ZooKeeper and the bench's session, if a case started them. */
  async zkIfStarted (): Promise<{ zk: ZkCluster, session: ZkSession } | undefined> {
    return await this.#zk?.catch(() => undefined)
  }

  get upstreamUrls (): string[] { return this.originPorts.map(p => `http://127.0.0.1:${p}`) }

  /** ZooKeeper with both origins registered as targets, started on first use. */
  async zk (): Promise<{ zk: ZkCluster, session: ZkSession }> {
    this.#zk ??= (async () => {
      const zk = await startZooKeeper({ nodes: 1 })
      const session = new ZkSession({ connect: zk.connectString, sessionTimeoutMs: 10_000, logger: pino({ level: 'silent' }) }).start()
      await session.waitConnected(10_000)
      await session.mkdirp('/targets')
      for (const [i, p] of this.originPorts.entries()) {
        await session.create(`/targets/origin-${i}`, Buffer.from(JSON.stringify({ url: `http://127.0.0.1:${p}`, requests: 0 })), CreateMode.EPHEMERAL)
      }
      return { zk, session }
    })()
    return await this.#zk
  }

  /**
   * One zkproxy process (`zkproxy proxy` from the built CLI), started on first use, ready once
   * it routes to a target. The admin listener is on, as by default, so metrics are recorded.
   * `logFile`: its stdout (the access log) goes there instead of through this process.
   */
  /**
   * A targets path where `routes` hosts (`app<i>.bench.example`) are declared: the last one by
   * both origins, every other one by 5 targets nobody calls. Returns the path and the Host the
   * load uses. The route table then holds `routes` routes and 5 × (routes − 1) + 2 targets.
   */
  async routedTargets (routes: number): Promise<{ path: string, host: string }> {
    const { session } = await this.zk()
    const path = `/bench-routes-${routes}/targets`
    await session.mkdirp(path)
    const host = `app${routes - 1}.bench.example`
    for (let i = 0; i < routes - 1; i++) {
      for (let j = 0; j < 5; j++) {
        const data = { url: `http://127.0.0.1:${10_000 + i * 5 + j}`, requests: 0, routes: [`app${i}.bench.example`] }
        await session.create(`${path}/idle-${i}-${j}`, Buffer.from(JSON.stringify(data)), CreateMode.EPHEMERAL)
      }
    }
    for (const [i, p] of this.originPorts.entries()) {
      await session.create(`${path}/origin-${i}`, Buffer.from(JSON.stringify({ url: `http://127.0.0.1:${p}`, requests: 0, routes: [host] })), CreateMode.EPHEMERAL)
    }
    return { path, host }
  }

  async proxy (name: string, flags: readonly string[], logFile?: string, cliPath?: string, readyHost?: string): Promise<{ url: string, p: TrackedProcess }> {
    let started = this.#proxies.get(name)
    if (started === undefined) {
      started = (async () => {
        const { zk } = await this.zk()
        const port = await freePort()
        const cli = cliPath ?? join(this.here, '..', 'src', 'cli', 'main.js')
        const args = [...this.proxyNodeFlags, cli, 'proxy', '--zk', zk.connectString, '--listen', `127.0.0.1:${port}`,
          '--admin', `127.0.0.1:${await freePort()}`, '--log-level', 'info', ...flags]
        // `exec` keeps the PID: the tracked process is node itself, with stdout in the file.
        const p = logFile === undefined
          ? spawnTracked(process.execPath, args, { name })
          : spawnTracked('sh', ['-c', 'exec "$@" >"$0"', logFile, process.execPath, ...args], { name })
        // SIGTERM first: a --cpu-prof profile is written on a normal exit.
        this.graceful.push({ p, signal: 'SIGTERM', graceMs: 5000 })
        const url = `http://127.0.0.1:${port}`
        await waitUntil(`${name} routing ${url}${PATH}`, p, async () => (await fetchStatus(`${url}${PATH}`, undefined, readyHost)) === 200)
        return { url, p }
      })()
      this.#proxies.set(name, started)
    }
    return await started
  }
}

async function nodeScript (script: string, args: string[], name: string): Promise<TrackedProcess> {
  const p = spawnTracked(process.execPath, [script, ...args], { name })
  await p.waitForOutput(/^ready /m, 20_000)
  return p
}

async function fetchStatus (url: string, header?: string, host?: string): Promise<number | string | undefined> {
  try {
    const r = await request(url, host === undefined ? {} : { headers: { host } })
    await r.body.dump()
    return header === undefined ? r.statusCode : String(r.headers[header])
  } catch { return undefined }
}

/** Polls `ok` every 50 ms for up to 20 s; fails early, with its output, if `p` exits. */
async function waitUntil (what: string, p: TrackedProcess, ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (!p.running) {
      // Its last line of output is usually the reason (a config error, a port in use).
      const last = p.output().split('\n').map(l => l.trim()).filter(l => l !== '').at(-1) ?? 'no output'
      throw new Error(`${p.name} exited (${describeExit(p.exitInfo!)}) before ${what}: ${last}`)
    }
    if (await ok()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`${what}: not within 20 s; output:\n${p.tail(10)}`)
}

function version (binary: string, args: readonly string[]): string {
  const out = spawnSync(binary, args, { encoding: 'utf8', timeout: 5000 })
  const v = /\d+\.\d+(?:\.\d+)?/.exec(`${out.stdout ?? ''} ${out.stderr ?? ''}`)?.[0]
  return v === undefined ? 'version unknown' : v
}

/** Starts a peer in its own directory; a missing binary or a failed start is a skip line. */
async function startPeer (f: Fixture, peer: Peer): Promise<Case | string> {
  const binary = findBinary(peer.binary)
  if (binary === undefined) return skipLine(peer)
  const dir = join(f.tmp, peer.name)
  mkdirSync(dir)
  // nginx's workers (nobody) and Varnish (its own users) drop root's privileges: they must
  // still reach their files.
  chmodSync(dir, 0o755)
  const port = await freePort()
  const launch = peer.launch({ dir, port, upstreams: f.originPorts })
  for (const [file, text] of Object.entries(launch.files)) writeFileSync(join(dir, file), text)
  const env = { ...process.env }
  for (const [k, v] of Object.entries(launch.env)) { if (v === null) delete env[k]; else env[k] = v }
  const p = spawnTracked(binary, launch.args, { name: peer.name, env })
  f.graceful.push({ p, signal: peer.stopSignal, graceMs: 3000 })
  const url = `http://127.0.0.1:${port}${PATH}`
  try {
    await waitUntil(`${peer.name} answering ${url}`, p, async () => (await fetchStatus(url)) === 200)
    if (peer.hits) await waitUntil(`${peer.name} answering from its cache`, p, async () => (await fetchStatus(url, 'x-cache')) === 'HIT')
  } catch (err) {
    await stopTree(p, peer.stopSignal, 3000)
    process.stderr.write(`${peer.name} output:\n${p.tail(10)}\n`)
    return `skip ${peer.name}: it did not start: ${(err as Error).message.split('\n')[0] ?? ''}`
  }
  return { name: peer.name, describe: `${peer.describe} (${peer.binary} ${version(binary, peer.versionArgs)})`, url, pid: p.pid, paced: peer.name === 'nginx' }
}

const zkCase = async (f: Fixture, name: string, describe: string, proxy: string, flags: string[], extra: { path?: string, script?: string, logFile?: string, paced?: boolean, cli?: string, host?: string } = {}): Promise<Case> => {
  const { url, p } = await f.proxy(proxy, flags, extra.logFile, extra.cli, extra.host)
  return { name, describe, url: `${url}${extra.path ?? PATH}`, pid: p.pid, paced: extra.paced ?? false, ...(extra.script === undefined ? {} : { script: extra.script }) }
}

const floorLike = async (f: Fixture, name: string, describe: string, script: string, paced: boolean): Promise<Case> => {
  const port = await freePort()
  const p = await nodeScript(join(f.here, script), [String(port), ...f.upstreamUrls], name)
  return { name, describe, url: `http://127.0.0.1:${port}${PATH}`, pid: p.pid, paced }
}

const peer = (name: string): Peer => PEERS.find(p => p.name === name)!

/** Every case, in the report's order, and how to start it. */
export const CASES: ReadonlyArray<{ readonly name: string, start: (f: Fixture) => Promise<Case | string> }> = [
  { name: 'direct', start: async (f) => ({ name: 'direct', describe: 'the origin itself (node:http, 1 KiB from memory)', url: `${f.upstreamUrls[0]!}${PATH}`, pid: f.origins[0]?.pid, paced: true }) },
  ...['nginx', 'nginx-auto', 'haproxy', 'caddy', 'caddy-auto'].map(name => ({ name, start: async (f: Fixture) => await startPeer(f, peer(name)) })),
  { name: 'bare', start: async (f) => await floorLike(f, 'bare', 'fastify + @fastify/reply-from, round-robin, no discovery, counting or failover', 'bare-forward.js', false) },
  { name: 'floor', start: async (f) => await floorLike(f, 'floor', 'node:http straight to undici\'s dispatcher, round-robin, no rules', 'floor-forward.js', true) },
  { name: 'zkproxy', start: async (f) => await zkCase(f, 'zkproxy', 'zkproxy, cache off (--cache-ttl 0), GET', 'zkproxy', ['--cache-ttl', '0'], { paced: true }) },
  {
    name: 'zk-post',
    start: async (f) => {
      const script = join(f.tmp, 'post.lua')
      writeFileSync(script, postScript(POST_BYTES))
      return await zkCase(f, 'zk-post', `the same zkproxy process, POST with a ${POST_BYTES}-byte body`, 'zkproxy', ['--cache-ttl', '0'], { script })
    }
  },
  {
    name: 'zk-baseline-hit',
    start: async (f) => f.baselineCli === undefined
      ? 'skip zk-baseline-hit: set BENCH_BASELINE_CLI to another build\'s dist/src/cli/main.js'
      : await zkCase(f, 'zk-baseline-hit', `another zkproxy build (${f.baselineCli}), cache on, every request a hit`, 'zkproxy-baseline-cache', [], { cli: f.baselineCli })
  },
  {
    name: 'zk-baseline',
    start: async (f) => f.baselineCli === undefined
      ? 'skip zk-baseline: set BENCH_BASELINE_CLI to another build\'s dist/src/cli/main.js'
      : await zkCase(f, 'zk-baseline', `another zkproxy build (${f.baselineCli}), cache off, GET`, 'zkproxy-baseline', ['--cache-ttl', '0'], { cli: f.baselineCli, paced: true })
  },
  ...[1, 200].map(routes => ({
    name: `zk-routes-${routes}`,
    start: async (f: Fixture): Promise<Case> => {
      const { path, host } = await f.routedTargets(routes)
      const script = join(f.tmp, `host-${routes}.lua`)
      writeFileSync(script, hostScript(host))
      return await zkCase(f, `zk-routes-${routes}`, `zkproxy, cache off, ${routes} route${routes === 1 ? '' : 's'} in the table (${routes === 1 ? 2 : 5 * (routes - 1) + 2} targets), GET by Host`,
        `zkproxy-routes-${routes}`, ['--cache-ttl', '0', '--targets-path', path], { script, host })
    }
  })),
  { name: 'zk-log', start: async (f) => await zkCase(f, 'zk-log', 'zkproxy, cache off, --access-log written to a file, GET', 'zkproxy-log', ['--cache-ttl', '0', '--access-log'], { logFile: join(f.tmp, 'access.log') }) },
  { name: 'zk-miss', start: async (f) => await zkCase(f, 'zk-miss', 'zkproxy, cache on, every response no-store (forwarded)', 'zkproxy-cache', [], { path: `/no-store${PATH}` }) },
  { name: 'zk-hit', start: async (f) => await zkCase(f, 'zk-hit', 'zkproxy, cache on, every request a hit', 'zkproxy-cache', []) },
  // The primary's PID: CPU time is read over its process tree, so the workers' is included.
  { name: 'zk-w2', start: async (f) => await zkCase(f, 'zk-w2', 'zkproxy --workers 2, cache off, GET', 'zkproxy-w2', ['--cache-ttl', '0', '--workers', '2']) },
  { name: 'zk-w2-hit', start: async (f) => await zkCase(f, 'zk-w2-hit', 'zkproxy --workers 2, cache on, every request a hit', 'zkproxy-w2-cache', ['--workers', '2']) },
  {
    name: 'ceiling',
    start: async (f) => {
      // The bytes of one real hit, captured from the cache-on proxy.
      const { url } = await f.proxy('zkproxy-cache', [])
      const hitFile = join(f.tmp, 'hit.json')
      writeFileSync(hitFile, JSON.stringify(await captureHit(`${url}${PATH}`)))
      const port = await freePort()
      const p = await nodeScript(join(f.here, 'ceiling.js'), [String(port), hitFile], 'ceiling')
      return { name: 'ceiling', describe: 'node:http sending one zkproxy hit\'s exact head and body from memory', url: `http://127.0.0.1:${port}${PATH}`, pid: p.pid, paced: false }
    }
  },
  ...['nginx-cache', 'varnish'].map(name => ({ name, start: async (f: Fixture) => await startPeer(f, peer(name)) }))
]

/** One cache hit's status, head fields (without the connection-level ones Node adds) and body. */
async function captureHit (url: string): Promise<{ status: number, fields: string[], body: string }> {
  for (let i = 0; i < 50; i++) {
    const r = await request(url)
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
