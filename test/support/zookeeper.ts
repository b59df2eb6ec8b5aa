// A real ZooKeeper for integration and e2e tests (DESIGN.md "ZooKeeper for tests, demo and
// users"): a standalone server or a 3-node ensemble on free loopback ports, each node a JVM we
// start ourselves (not via zkServer.sh, so we hold the real PID) with its own temp dir.
// ZK_CONNECT switches to an external ensemble that we only talk to.

import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { freePorts } from './ports.js'
import { describeExit, onExitCleanup, spawnTracked, type TrackedProcess } from './processes.js'
import { ms, until, untilValue } from './until.js'

export type FourLetterCommand = 'srvr' | 'ruok' | 'mntr' | 'stat' | 'cons'

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

export interface ZooKeeperInstallation {
  /** Java class path holding ZooKeeper, its dependencies and one SLF4J binding if available. */
  classpath: string
  /** Where ZooKeeper was found (ZOOKEEPER_HOME, /usr/share/zookeeper, ...). */
  home: string
  /** The java executable to run it with. */
  java: string
}

export interface StartZooKeeperOptions {
  nodes?: 1 | 3
}

const TMP_PREFIX = 'zkproxy-zk-'
const TICK_MS = 500
const SERVING_MODES = new Set(['standalone', 'leader', 'follower', 'observer'])
const JVM_FLAGS = [
  '-Xmx256m',
  '-Xss512k',
  // Start-up speed: the C1 compiler alone warms up fastest, serial GC has the least set-up,
  // the default CDS archive shares JDK classes, no perf-data file in /tmp.
  '-XX:TieredStopAtLevel=1',
  '-XX:+UseSerialGC',
  '-Xshare:auto',
  '-XX:-UsePerfData',
  '-Djava.awt.headless=true',
  '-Dzookeeper.admin.enableServer=false',
  '-Dzookeeper.jmx.log4j.disable=true'
]

// ---------------------------------------------------------------------------------------------
// Finding an installation

/** Directories searched after ZOOKEEPER_HOME, in order. */
const DEBIAN_HOME = '/usr/share/zookeeper'
const DEBIAN_JARS = '/usr/share/java'
const OTHER_HOMES = ['/opt/zookeeper', '/usr/local/zookeeper', '/opt/homebrew/opt/zookeeper/libexec', '/usr/local/opt/zookeeper/libexec']

function isFile (p: string): boolean {
  try {
    return statSync(p).isFile()
  } catch {
    return false
  }
}

function listJars (dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.jar')).sort().map((f) => join(dir, f))
  } catch {
    return []
  }
}

function findJava (env: NodeJS.ProcessEnv): string | undefined {
  const javaHome = env['JAVA_HOME']
  if (javaHome !== undefined && javaHome !== '' && isFile(join(javaHome, 'bin', 'java'))) return join(javaHome, 'bin', 'java')
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir !== '' && isFile(join(dir, 'java'))) return join(dir, 'java')
  }
  return undefined
}

/** Debian/Ubuntu: jars in /usr/share/java, bin scripts in /usr/share/zookeeper. */
function debianClasspath (debianHome: string, debianJars: string): string[] | undefined {
  const main = join(debianJars, 'zookeeper.jar')
  if (!existsSync(debianHome) || !isFile(main)) return undefined
  // zookeeper.jar's manifest Class-Path names its dependencies (that is all zkEnv.sh relies on);
  // list the essential ones as well in case a repackaging drops the manifest. The package ships
  // no SLF4J binding, so ZooKeeper would log nothing: add slf4j-simple (same package as
  // slf4j-api) to get a log file we can show when a node fails.
  const extras = ['zookeeper-jute.jar', 'slf4j-api.jar', 'slf4j-simple.jar']
    .map((j) => join(debianJars, j))
    .filter(isFile)
  return [main, ...extras]
}

/** Apache binary tarball layout (also Homebrew's libexec): lib/*.jar. */
function tarballClasspath (home: string): string[] | undefined {
  const jars = listJars(join(home, 'lib'))
  const hasServer = (list: string[]): boolean => list.some((j) => /\/zookeeper-\d[^/]*\.jar$/.test(j))
  if (hasServer(jars)) return jars
  // Older layout: the server jar next to lib/.
  const top = listJars(home)
  if (hasServer(top)) return [...top, ...jars]
  return undefined
}

/** Where findZooKeeper() looks after ZOOKEEPER_HOME; overridable so tests can see a bare machine. */
export interface ZooKeeperSearchPaths {
  debianHome?: string
  debianJars?: string
  otherHomes?: readonly string[]
}

/**
 * Locates ZooKeeper: ZOOKEEPER_HOME, else the Debian/Ubuntu package, else /opt/zookeeper,
 * /usr/local/zookeeper and Homebrew. Never throws; returns `{ error }` with one clear message.
 */
export function findZooKeeper (
  env: NodeJS.ProcessEnv = process.env,
  paths: ZooKeeperSearchPaths = {}
): ZooKeeperInstallation | { error: string } {
  const { debianHome = DEBIAN_HOME, debianJars = DEBIAN_JARS, otherHomes = OTHER_HOMES } = paths
  const installHint = 'Install it with `apt-get install -y zookeeper` (Debian/Ubuntu) or set ZOOKEEPER_HOME or ZK_CONNECT.'
  let found: { home: string, jars: string[] } | undefined
  const explicit = env['ZOOKEEPER_HOME']
  if (explicit !== undefined && explicit !== '') {
    const jars = tarballClasspath(explicit) ?? (explicit === debianHome ? debianClasspath(debianHome, debianJars) : undefined)
    if (jars === undefined) {
      return { error: `ZOOKEEPER_HOME=${explicit} holds no ZooKeeper server jar (looked for lib/zookeeper-<version>.jar). ${installHint}` }
    }
    found = { home: explicit, jars }
  } else {
    const debian = debianClasspath(debianHome, debianJars)
    if (debian !== undefined) found = { home: debianHome, jars: debian }
    for (const home of otherHomes) {
      if (found !== undefined) break
      const jars = tarballClasspath(home)
      if (jars !== undefined) found = { home, jars }
    }
  }
  if (found === undefined) {
    const places = ['$ZOOKEEPER_HOME (unset)', `${debianHome} + ${debianJars}/zookeeper.jar`, ...otherHomes].join(', ')
    return { error: `No ZooKeeper installation found (looked in ${places}). ${installHint}` }
  }
  const java = findJava(env)
  if (java === undefined) {
    return { error: `ZooKeeper found in ${found.home} but no java executable (looked in $JAVA_HOME/bin and PATH). Install a JRE (\`apt-get install -y default-jre-headless\`) or set JAVA_HOME.` }
  }
  return { classpath: found.jars.join(delimiter), home: found.home, java }
}

/** JVM options and config files that point whichever SLF4J binding is on the class path at a file. */
function loggingSetup (classpath: string, dir: string): { args: string[], files: Record<string, string> } {
  const logFile = join(dir, 'zookeeper.log')
  if (/logback-classic/.test(classpath)) {
    const xml = `<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>${logFile}</file>
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level [%thread] %logger{0} - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
`
    return { args: [`-Dlogback.configurationFile=${join(dir, 'logback.xml')}`], files: { 'logback.xml': xml } }
  }
  if (/slf4j-simple/.test(classpath)) {
    return {
      args: [
        `-Dorg.slf4j.simpleLogger.logFile=${logFile}`,
        '-Dorg.slf4j.simpleLogger.defaultLogLevel=info',
        '-Dorg.slf4j.simpleLogger.showDateTime=true',
        '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS'
      ],
      files: {}
    }
  }
  if (/(slf4j-log4j12|slf4j-reload4j)/.test(classpath)) {
    const props = `log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${logFile}
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{HH:mm:ss,SSS} %-5p [%t] %c{1} - %m%n
`
    return { args: [`-Dlog4j.configuration=file:${join(dir, 'log4j.properties')}`], files: { 'log4j.properties': props } }
  }
  return { args: [], files: {} }
}

// ---------------------------------------------------------------------------------------------
// Four-letter words

/** Sends a four-letter word to "host:port" and returns the answer (the server closes when done). */
export async function fourLetterWord (hostPort: string, cmd: FourLetterCommand, timeoutMs = ms(3000)): Promise<string> {
  const { host, port } = splitHostPort(hostPort)
  return await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect({ host, port })
    // A paused (SIGSTOPped) server accepts the connection in the kernel but never answers.
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(new Error(`${cmd} to ${hostPort}: no answer within ${timeoutMs} ms`))
    })
    socket.on('connect', () => socket.end(cmd))
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', (err) => reject(new Error(`${cmd} to ${hostPort}: ${err.message}`, { cause: err })))
    socket.on('close', (hadError) => { if (!hadError) resolve(Buffer.concat(chunks).toString('utf8')) })
  })
}

function splitHostPort (hostPort: string): { host: string, port: number } {
  const i = hostPort.lastIndexOf(':')
  const port = Number(hostPort.slice(i + 1))
  if (i <= 0 || !Number.isInteger(port)) throw new Error(`bad host:port ${JSON.stringify(hostPort)}`)
  return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port }
}

function parseMntr (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t')
    if (tab > 0) out[line.slice(0, tab)] = line.slice(tab + 1).trim()
  }
  return out
}

function modeOf (srvr: string): string | undefined {
  return /^Mode: (\S+)/m.exec(srvr)?.[1]
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

interface Owner {
  owner: number
  jvm: number | null
}

class ZkNode {
  readonly index: number
  readonly dir: string
  readonly clientPort: number
  #install: ZooKeeperInstallation
  #logArgs: string[]
  #proc: TrackedProcess | undefined
  #state: NodeState = 'stopped'

  constructor (index: number, dir: string, clientPort: number, install: ZooKeeperInstallation, logArgs: string[]) {
    this.index = index
    this.dir = dir
    this.clientPort = clientPort
    this.#install = install
    this.#logArgs = logArgs
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
    const proc = spawnTracked(this.#install.java, [
      ...JVM_FLAGS,
      ...this.#logArgs,
      '-cp', this.#install.classpath,
      'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      join(this.dir, 'zoo.cfg')
    ], { cwd: this.dir, name: `zookeeper-${this.index}` })
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
      await until(async () => {
        if (await fourLetterWord(this.hostPort, 'ruok', ms(1000)) !== 'imok') return false
        const mode = modeOf(await fourLetterWord(this.hostPort, 'srvr', ms(1000)))
        return mode !== undefined && SERVING_MODES.has(mode)
      }, { timeoutMs, intervalMs: 25, message: `ZooKeeper node ${this.index} on ${this.hostPort} to serve`, signal: died.signal })
    } catch (err) {
      if (died.signal.aborted) throw err
      throw new Error(`${(err as Error).message}\n${this.diagnostics()}`, { cause: err })
    } finally {
      waiting = false
    }
  }

  /** Last output and log lines, for error messages. */
  diagnostics (lines = 30): string {
    let log = '(no log file)'
    try {
      log = readFileSync(join(this.dir, 'zookeeper.log'), 'utf8').split('\n').slice(-lines - 1).join('\n')
    } catch {}
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
    return /BindException|Address already in use/.test(this.diagnostics(200))
  }
}

async function writeOwner (dir: string, jvm: number | null): Promise<void> {
  const owner: Owner = { owner: process.pid, jvm }
  await writeFile(join(dir, 'owner.json'), JSON.stringify(owner))
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

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes temp dirs (and kills JVMs) left behind by test processes that died without running
 * their exit hooks, e.g. a worker killed with SIGKILL. A JVM is only killed when its command
 * line still names that dir, so a recycled PID is never hit.
 */
function reapStale (): void {
  let entries: string[]
  try {
    entries = readdirSync(tmpdir()).filter((e) => e.startsWith(TMP_PREFIX))
  } catch {
    return
  }
  for (const entry of entries) {
    const dir = join(tmpdir(), entry)
    let owner: Owner
    try {
      owner = JSON.parse(readFileSync(join(dir, 'owner.json'), 'utf8')) as Owner
    } catch {
      continue // being created right now, or not ours
    }
    if (alive(owner.owner)) continue
    if (owner.jvm !== null && alive(owner.jvm)) {
      try {
        if (readFileSync(`/proc/${owner.jvm}/cmdline`, 'utf8').includes(dir)) process.kill(owner.jvm, 'SIGKILL')
      } catch {}
    }
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {}
  }
}

function zooCfg (node: { dataDir: string, clientPort: number }, ensemble: Array<{ peerPort: number, electionPort: number }>): string {
  const lines = [
    `tickTime=${TICK_MS}`,
    'initLimit=10',
    'syncLimit=5',
    // Sessions from 1 s (2 ticks) up to 60 s, so tests can ask for short ones.
    `minSessionTimeout=${2 * TICK_MS}`,
    'maxSessionTimeout=60000',
    `dataDir=${node.dataDir}`,
    `clientPort=${node.clientPort}`,
    'clientPortAddress=127.0.0.1',
    // Every test connection comes from 127.0.0.1; the default cap of 60 is easy to reach.
    'maxClientCnxns=0',
    '4lw.commands.whitelist=*',
    'admin.enableServer=false',
    // Data only has to survive a process kill, not a power cut: skip fsync, keep log files small.
    'forceSync=no',
    'preAllocSize=4096',
    'autopurge.purgeInterval=0'
  ]
  if (ensemble.length === 1) {
    lines.push('standaloneEnabled=true')
  } else {
    lines.push('standaloneEnabled=false', 'reconfigEnabled=false')
    ensemble.forEach((p, i) => lines.push(`server.${i + 1}=127.0.0.1:${p.peerPort}:${p.electionPort}`))
  }
  return lines.join('\n') + '\n'
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
  return await Promise.all(ensemble.map(async (p, i) => {
    const dir = await mkdtemp(join(tmpdir(), TMP_PREFIX))
    await writeOwner(dir, null)
    const dataDir = join(dir, 'data')
    await mkdir(dataDir)
    if (size > 1) await writeFile(join(dataDir, 'myid'), `${i + 1}\n`)
    await writeFile(join(dir, 'zoo.cfg'), zooCfg({ dataDir, clientPort: p.clientPort }, ensemble))
    const logging = loggingSetup(install.classpath, dir)
    for (const [name, text] of Object.entries(logging.files)) await writeFile(join(dir, name), text)
    return new ZkNode(i, dir, p.clientPort, install, logging.args)
  }))
}
