// A real ZooKeeper for integration and e2e tests (docs/operations.md "ZooKeeper for tests, demo and
// users"): a standalone server or a 3-node ensemble on free loopback ports, each node a JVM we
// start ourselves (not via zkServer.sh, so we hold the real PID) with its own temp dir.
// ZK_CONNECT switches to an external ensemble that we only talk to.

import { rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  findZooKeeper,
  fourLetterWord as fourLetterWordUnscaled,
  isBindConflict,
  logTail,
  modeOf,
  parseMntr,
  prepareServerDir,
  probeServing,
  reapStale,
  writeOwner,
  type FourLetterCommand,
  type ServerDir,
  type ZooKeeperInstallation
} from '../../src/dev/zookeeper-launcher.js'
import { freePorts } from './ports.js'
import { describeExit, onExitCleanup, spawnTracked, type TrackedProcess } from './processes.js'
import { ms, until, untilValue } from './until.js'

// The installation finder, config writer and probes live in src/dev/ (`zkproxy dev` runs the
// same server); this file adds what only tests need: ensembles, node control, ZK_CONNECT.
export { findZooKeeper, type FourLetterCommand, type ZooKeeperInstallation }
export type { ZooKeeperSearchPaths } from '../../src/dev/zookeeper-launcher.js'

export interface ZkCluster {
  /** "127.0.0.1:p1,127.0.0.1:p2,..." (client ports); append "/chroot" for a per-file root. */
  readonly connectString: string
  /** Number of nodes: 1 or 3 (for ZK_CONNECT: the number of hosts given). */
  readonly size: number
  /** True when ZK_CONNECT was used: node control methods then throw. */
  readonly external: boolean
  /** One node's "127.0.0.1:port". */
  nodeConnectString: (i: number) => string
  /** SIGTERM, wait for the exit (SIGKILL after a grace). */
  stopNode: (i: number) => Promise<void>
  /** SIGKILL, wait for the exit. */
  killNode: (i: number) => Promise<void>
  /** SIGSTOP: the node keeps its sockets but answers nothing (a hung or partitioned server). */
  pauseNode: (i: number) => void
  /** SIGCONT after pauseNode. */
  resumeNode: (i: number) => void
  /** Restarts a stopped node with the same data dir and ports; resolves once it serves. */
  startNode: (i: number) => Promise<void>
  /** Index of the node that is currently leader (standalone: 0); waits for an election to end. */
  leader: () => Promise<number>
  /** Sends a four-letter word to node i and returns the whole answer. */
  fourLetter: (i: number, cmd: FourLetterCommand) => Promise<string>
  /** Node i's `mntr` output as key/value pairs (zk_server_state, zk_znode_count, ...). */
  mntr: (i: number) => Promise<Record<string, string>>
  /** PIDs of the node JVMs that are alive (running or paused). */
  pids: () => number[]
  /** Kills every node by PID and removes the temp dirs; idempotent. */
  stop: () => Promise<void>
}

export interface StartZooKeeperOptions {
  nodes?: 1 | 3
}

// ---------------------------------------------------------------------------------------------
// Four-letter words

/** Sends a four-letter word to "host:port" and returns the answer (the server closes when done). */
export async function fourLetterWord (hostPort: string, cmd: FourLetterCommand, timeoutMs = ms(3000)): Promise<string> {
  return await fourLetterWordUnscaled(hostPort, cmd, timeoutMs)
}

/** Leader among the answering nodes; undefined while an election is on (none or two claim it). */
async function findLeader (hosts: Array<string | undefined>): Promise<number | undefined> {
  const modes = await Promise.all(hosts.map(async (h) => {
    if (h === undefined) return undefined
    try {
      return modeOf(await fourLetterWord(h, 'srvr', ms(1000)))
    } catch {
      return undefined
    }
  }))
  const leaders = modes.flatMap((m, i) => (m === 'leader' || m === 'standalone' ? [i] : []))
  return leaders.length === 1 ? leaders[0] : undefined
}

// ---------------------------------------------------------------------------------------------
// Nodes started here

type NodeState = 'running' | 'paused' | 'stopped'

class ZkNode {
  readonly index: number
  readonly dir: string
  readonly clientPort: number
  #java: string
  #args: readonly string[]
  #proc: TrackedProcess | undefined
  #state: NodeState = 'stopped'

  constructor (index: number, server: ServerDir, java: string) {
    this.index = index
    this.dir = server.dir
    this.clientPort = server.clientPort
    this.#java = java
    this.#args = server.args
  }

  get hostPort (): string {
    return `127.0.0.1:${this.clientPort}`
  }

  get state (): NodeState {
    return this.#state
  }

  get pid (): number | undefined {
    return this.#proc?.running === true ? this.#proc.pid : undefined
  }

  async spawn (): Promise<void> {
    if (this.#proc?.running === true) throw new Error(`ZooKeeper node ${this.index} is already running (pid ${this.#proc.pid})`)
    const proc = spawnTracked(this.#java, this.#args, { cwd: this.dir, name: `zookeeper-${this.index}` })
    this.#proc = proc
    this.#state = 'running'
    void proc.exited.then(() => { if (this.#proc === proc) this.#state = 'stopped' })
    await writeOwner(this.dir, proc.pid)
  }

  /** Resolves once this node answers ruok and srvr shows a serving mode; fails fast if the JVM dies. */
  async waitServing (timeoutMs: number): Promise<void> {
    const proc = this.#proc
    if (proc === undefined) throw new Error(`ZooKeeper node ${this.index} was never started`)
    const died = new AbortController()
    let waiting = true
    void proc.exited.then((info) => {
      if (waiting) died.abort(new Error(`ZooKeeper node ${this.index} (pid ${proc.pid}) exited during start-up (${describeExit(info)}).\n${this.diagnostics()}`))
    })
    try {
      await until(async () => await probeServing(this.hostPort, ms(1000)), { timeoutMs, intervalMs: 25, message: `ZooKeeper node ${this.index} on ${this.hostPort} to serve`, signal: died.signal })
    } catch (err) {
      if (died.signal.aborted) throw err
      throw new Error(`${(err as Error).message}\n${this.diagnostics()}`, { cause: err })
    } finally {
      waiting = false
    }
  }

  /** Last output and log lines, for error messages. */
  diagnostics (lines = 30): string {
    const log = logTail(join(this.dir, 'zookeeper.log'), lines)
    const out = this.#proc?.tail(lines).trim() ?? ''
    return `--- node ${this.index} output ---\n${out === '' ? '(none)' : out}\n--- node ${this.index} log (${join(this.dir, 'zookeeper.log')}) ---\n${log}`
  }

  async stop (graceMs: number): Promise<void> {
    await this.#proc?.stop('SIGTERM', graceMs)
    this.#state = 'stopped'
  }

  async kill (): Promise<void> {
    const proc = this.#proc
    if (proc === undefined) return
    proc.kill()
    await proc.exited
    this.#state = 'stopped'
  }

  pause (): void {
    if (this.#state !== 'running' || this.#proc === undefined) throw new Error(`ZooKeeper node ${this.index} is ${this.#state}, cannot pause it`)
    this.#proc.pause()
    this.#state = 'paused'
  }

  resume (): void {
    if (this.#state !== 'paused' || this.#proc === undefined) throw new Error(`ZooKeeper node ${this.index} is ${this.#state}, not paused`)
    this.#proc.resume()
    this.#state = 'running'
  }

  killSync (): void {
    this.#proc?.kill()
  }

  bindConflict (): boolean {
    return isBindConflict(this.diagnostics(200))
  }
}

/** ZKPROXY_KEEP_ZK_DIRS=1 keeps node dirs (config, data, zookeeper.log) for a post-mortem. */
function keepDirs (): boolean {
  return process.env['ZKPROXY_KEEP_ZK_DIRS'] === '1'
}

async function removeDir (dir: string, evenIfKept = false): Promise<void> {
  if (keepDirs() && !evenIfKept) {
    // Without an owner file reapStale() leaves the dir alone.
    await rm(join(dir, 'owner.json'), { force: true })
    process.stderr.write(`ZKPROXY_KEEP_ZK_DIRS: kept ${dir}\n`)
  } else {
    await rm(dir, { recursive: true, force: true })
  }
}

class LocalCluster implements ZkCluster {
  readonly connectString: string
  readonly size: number
  readonly external = false
  #nodes: ZkNode[]
  #stopping: Promise<void> | undefined
  #unregisterCleanup: () => void

  constructor (nodes: ZkNode[]) {
    this.#nodes = nodes
    this.size = nodes.length
    this.connectString = nodes.map((n) => n.hostPort).join(',')
    // A test that fails before stop() still must not leave JVMs or temp dirs behind.
    this.#unregisterCleanup = onExitCleanup(() => this.#stopSync())
  }

  #node (i: number): ZkNode {
    const node = this.#nodes[i]
    if (node === undefined || !Number.isInteger(i)) throw new Error(`no ZooKeeper node ${i} (cluster has ${this.size})`)
    if (this.#stopping !== undefined) throw new Error('ZooKeeper cluster already stopped')
    return node
  }

  nodeConnectString (i: number): string {
    return this.#node(i).hostPort
  }

  async stopNode (i: number): Promise<void> {
    await this.#node(i).stop(ms(5000))
  }

  async killNode (i: number): Promise<void> {
    await this.#node(i).kill()
  }

  pauseNode (i: number): void {
    this.#node(i).pause()
  }

  resumeNode (i: number): void {
    this.#node(i).resume()
  }

  async startNode (i: number): Promise<void> {
    const node = this.#node(i)
    await node.spawn()
    await node.waitServing(ms(30_000))
  }

  async leader (): Promise<number> {
    if (this.size === 1) return 0
    return await untilValue(
      async () => await findLeader(this.#nodes.map((n) => (n.state === 'running' ? n.hostPort : undefined))),
      { timeoutMs: ms(30_000), intervalMs: 50, message: `a single leader among ${this.connectString}` }
    )
  }

  async fourLetter (i: number, cmd: FourLetterCommand): Promise<string> {
    return await fourLetterWord(this.#node(i).hostPort, cmd)
  }

  async mntr (i: number): Promise<Record<string, string>> {
    return parseMntr(await this.fourLetter(i, 'mntr'))
  }

  pids (): number[] {
    return this.#nodes.flatMap((n) => (n.pid === undefined ? [] : [n.pid]))
  }

  async stop (): Promise<void> {
    this.#stopping ??= (async () => {
      // SIGKILL: the data dirs go away anyway, and it also ends paused nodes.
      await Promise.all(this.#nodes.map(async (n) => await n.kill()))
      await Promise.all(this.#nodes.map(async (n) => await removeDir(n.dir)))
      this.#unregisterCleanup()
    })()
    await this.#stopping
  }

  /** For the exit hook, where nothing asynchronous runs any more. */
  #stopSync (): void {
    for (const n of this.#nodes) n.killSync()
    for (const n of this.#nodes) {
      try {
        if (keepDirs()) rmSync(join(n.dir, 'owner.json'), { force: true })
        else rmSync(n.dir, { recursive: true, force: true })
      } catch {}
    }
  }
}

// ---------------------------------------------------------------------------------------------
// External ensemble (ZK_CONNECT)

class ExternalCluster implements ZkCluster {
  readonly connectString: string
  readonly size: number
  readonly external = true
  #hosts: string[]

  constructor (connect: string) {
    this.connectString = connect
    const slash = connect.indexOf('/')
    this.#hosts = (slash === -1 ? connect : connect.slice(0, slash)).split(',').map((h) => h.trim()).filter((h) => h !== '')
    this.size = this.#hosts.length
  }

  #host (i: number): string {
    const h = this.#hosts[i]
    if (h === undefined) throw new Error(`no ZooKeeper node ${i} in ZK_CONNECT=${this.connectString}`)
    return h
  }

  #unavailable (what: string): never {
    throw new Error(`${what} is not available with ZK_CONNECT (external ensemble ${this.connectString})`)
  }

  nodeConnectString (i: number): string {
    return this.#host(i)
  }

  async stopNode (): Promise<void> { this.#unavailable('stopNode') }
  async killNode (): Promise<void> { this.#unavailable('killNode') }
  pauseNode (): void { this.#unavailable('pauseNode') }
  resumeNode (): void { this.#unavailable('resumeNode') }
  async startNode (): Promise<void> { this.#unavailable('startNode') }

  async leader (): Promise<number> {
    return await untilValue(async () => await findLeader(this.#hosts), {
      timeoutMs: ms(10_000), message: `a single leader among ${this.connectString} (needs 4lw.commands.whitelist to allow srvr)`
    })
  }

  async fourLetter (i: number, cmd: FourLetterCommand): Promise<string> {
    return await fourLetterWord(this.#host(i), cmd)
  }

  async mntr (i: number): Promise<Record<string, string>> {
    return parseMntr(await this.fourLetter(i, 'mntr'))
  }

  pids (): number[] {
    return []
  }

  async stop (): Promise<void> {}
}

// ---------------------------------------------------------------------------------------------
// Start-up

/**
 * Starts a standalone server (default) or a 3-node ensemble on free loopback ports and resolves
 * once every node serves. With ZK_CONNECT set, returns that ensemble instead and starts nothing.
 */
export async function startZooKeeper (opts: StartZooKeeperOptions = {}): Promise<ZkCluster> {
  const external = process.env['ZK_CONNECT']?.trim()
  if (external !== undefined && external !== '') return new ExternalCluster(external)
  const size = opts.nodes ?? 1
  if (size !== 1 && size !== 3) throw new Error(`startZooKeeper: nodes must be 1 or 3, got ${String(size)}`)
  const install = findZooKeeper()
  if ('error' in install) throw new Error(install.error)
  reapStale()
  // A free port can be taken by someone else before the JVM binds it: retry on a bind conflict.
  for (let attempt = 1; ; attempt++) {
    const nodes = await createNodes(size, install)
    try {
      await Promise.all(nodes.map(async (n) => await n.spawn()))
      await Promise.all(nodes.map(async (n) => await n.waitServing(ms(30_000))))
      return new LocalCluster(nodes)
    } catch (err) {
      const retry = attempt < 3 && nodes.some((n) => n.bindConflict())
      await Promise.all(nodes.map(async (n) => await n.kill()))
      await Promise.all(nodes.map(async (n) => await removeDir(n.dir, retry)))
      if (!retry) throw err
    }
  }
}

async function createNodes (size: number, install: ZooKeeperInstallation): Promise<ZkNode[]> {
  const ports = await freePorts(size === 1 ? 1 : size * 3)
  const take = (i: number): number => {
    const p = ports[i]
    if (p === undefined) throw new Error('not enough free ports')
    return p
  }
  const ensemble = Array.from({ length: size }, (_, i) => ({ clientPort: take(i), peerPort: size === 1 ? 0 : take(size + 2 * i), electionPort: size === 1 ? 0 : take(size + 2 * i + 1) }))
  return await Promise.all(ensemble.map(async (_, i) => new ZkNode(i, await prepareServerDir(install, ensemble, i), install.java)))
}
