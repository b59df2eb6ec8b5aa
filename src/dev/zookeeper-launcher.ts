// Runs a real ZooKeeper from the local installation (for the tests, the demo and users): finds
// it, writes a server's config into its own temp dir, starts the JVM ourselves (not via
// zkServer.sh, so we hold the real PID), waits until it serves, and stops it by PID.
// `zkproxy dev` uses startStandalone(); the test harness (test/support/zookeeper.ts) builds
// ensembles and node control on the same pieces.
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export type FourLetterCommand = 'srvr' | 'ruok' | 'mntr' | 'stat' | 'cons'

export interface ZooKeeperInstallation {
  /** Java class path holding ZooKeeper, its dependencies and one SLF4J binding if available. */
  classpath: string
  /** Where ZooKeeper was found (ZOOKEEPER_HOME, /usr/share/zookeeper, ...). */
  home: string
  /** The java executable to run it with. */
  java: string
}

/** Temp dirs start with this; reapStale() only looks at these. */
export const TMP_PREFIX = 'zkproxy-zk-'
export const SERVING_MODES: ReadonlySet<string> = new Set(['standalone', 'leader', 'follower', 'observer'])
const TICK_MS = 500
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

// ---------------------------------------------------------------------------------------------
// Four-letter words

/** Sends a four-letter word to "host:port" and returns the answer (the server closes when done). */
export async function fourLetterWord (hostPort: string, cmd: FourLetterCommand, timeoutMs = 3000): Promise<string> {
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

/** `mntr` output as key/value pairs (zk_server_state, zk_znode_count, ...). */
export function parseMntr (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const tab = line.indexOf('\t')
    if (tab > 0) out[line.slice(0, tab)] = line.slice(tab + 1).trim()
  }
  return out
}

/** The `Mode:` line of a `srvr` answer (standalone, leader, follower, observer). */
export function modeOf (srvr: string): string | undefined {
  return /^Mode: (\S+)/m.exec(srvr)?.[1]
}

/**
 * True once the server answers ruok and srvr shows a serving mode. Throws while it does not
 * answer at all (connection refused, no answer within `probeTimeoutMs`), so a poller can report
 * the last reason.
 */
export async function probeServing (hostPort: string, probeTimeoutMs = 1000): Promise<boolean> {
  if (await fourLetterWord(hostPort, 'ruok', probeTimeoutMs) !== 'imok') return false
  const mode = modeOf(await fourLetterWord(hostPort, 'srvr', probeTimeoutMs))
  return mode !== undefined && SERVING_MODES.has(mode)
}

// ---------------------------------------------------------------------------------------------
// A server's directory: zoo.cfg, data/, logging, owner.json

export interface EnsemblePorts { readonly clientPort: number, readonly peerPort: number, readonly electionPort: number }

export interface ServerDir {
  /** The temp dir holding zoo.cfg, data/, zookeeper.log and owner.json. */
  readonly dir: string
  readonly clientPort: number
  readonly logFile: string
  /** java arguments that run this server (JVM flags, logging, class path, main class, zoo.cfg). */
  readonly args: readonly string[]
}

/**
 * Creates a temp dir for server `index` of `ensemble` (one entry: standalone) and writes its
 * config. The owner file names this process, so reapStale() in a later run can tell a dir
 * whose owner died from one in use.
 */
export async function prepareServerDir (install: ZooKeeperInstallation, ensemble: readonly EnsemblePorts[], index: number): Promise<ServerDir> {
  const self = ensemble[index]
  if (self === undefined) throw new Error(`no server ${index} in an ensemble of ${ensemble.length}`)
  const dir = await mkdtemp(join(tmpdir(), TMP_PREFIX))
  await writeOwner(dir, null)
  const dataDir = join(dir, 'data')
  await mkdir(dataDir)
  if (ensemble.length > 1) await writeFile(join(dataDir, 'myid'), `${index + 1}\n`)
  await writeFile(join(dir, 'zoo.cfg'), zooCfg({ dataDir, clientPort: self.clientPort }, ensemble))
  const logging = loggingSetup(install.classpath, dir)
  for (const [name, text] of Object.entries(logging.files)) await writeFile(join(dir, name), text)
  const args = [...JVM_FLAGS, ...logging.args, '-cp', install.classpath, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(dir, 'zoo.cfg')]
  return { dir, clientPort: self.clientPort, logFile: join(dir, 'zookeeper.log'), args }
}

function zooCfg (node: { dataDir: string, clientPort: number }, ensemble: ReadonlyArray<{ peerPort: number, electionPort: number }>): string {
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
    // Every local connection comes from 127.0.0.1; the default cap of 60 is easy to reach.
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

/** The last `lines` lines of a server's log file, or a note that there is none. */
export function logTail (logFile: string, lines = 30): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-lines - 1).join('\n')
  } catch {
    return '(no log file)'
  }
}

/** Whether a failed start-up was a port taken between choosing it and the JVM binding it. */
export function isBindConflict (text: string): boolean {
  return /BindException|Address already in use/.test(text)
}

interface Owner {
  owner: number
  jvm: number | null
}

/** Records which process owns a server dir and which JVM runs in it (null: none yet). */
export async function writeOwner (dir: string, jvm: number | null): Promise<void> {
  const owner: Owner = { owner: process.pid, jvm }
  await writeFile(join(dir, 'owner.json'), JSON.stringify(owner))
}

/** True while a process with this PID exists (EPERM: it exists but is not ours). */
export function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes temp dirs (and kills JVMs) left behind by processes that died without cleaning up,
 * e.g. one killed with SIGKILL. A JVM is only killed when its command line still names that
 * dir, so a recycled PID is never hit.
 */
export function reapStale (): void {
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

// ---------------------------------------------------------------------------------------------
// One standalone server (zkproxy dev)

export interface StandaloneZooKeeper {
  /** "127.0.0.1:port". */
  readonly connectString: string
  readonly pid: number
  readonly dir: string
  /** Settles when the JVM has exited, for whatever reason. */
  readonly exited: Promise<void>
  /** SIGTERM, SIGKILL after `graceMs`, then removes the temp dir. Idempotent. */
  stop: (graceMs?: number) => Promise<void>
  /** SIGKILL without waiting, for process 'exit' hooks where nothing asynchronous runs. */
  killSync: () => void
}

export interface StandaloneOptions {
  readonly install: ZooKeeperInstallation
  /** How long the JVM may take to serve (default 30 s). */
  readonly timeoutMs?: number
  /**
   * Own process group: a Ctrl-C in the terminal then reaches only our process, which stops
   * the server last, after the processes that still talk to it.
   */
  readonly detached?: boolean
  /** Told the JVM's PID and temp dir as soon as it is spawned (e.g. for a watchdog). */
  readonly onSpawn?: (pid: number, dir: string) => void
}

/**
 * Starts a standalone server on a free loopback port from `install` and resolves once it
 * serves; on failure the JVM is killed, its dir removed, and the error carries its last output.
 */
export async function startStandalone (opts: StandaloneOptions): Promise<StandaloneZooKeeper> {
  reapStale()
  // A free port can be taken by someone else before the JVM binds it: retry on a bind conflict.
  for (let attempt = 1; ; attempt++) {
    const clientPort = await freeLoopbackPort()
    const server = await prepareServerDir(opts.install, [{ clientPort, peerPort: 0, electionPort: 0 }], 0)
    const child = spawn(opts.install.java, server.args, { cwd: server.dir, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached === true })
    if (child.pid === undefined) {
      child.once('error', () => {}) // reported asynchronously; the throw below says it
      await rm(server.dir, { recursive: true, force: true })
      throw new Error(`cannot start ${opts.install.java}: not found or not executable`)
    }
    const pid = child.pid
    opts.onSpawn?.(pid, server.dir)
    let output = ''
    const keep = (c: Buffer): void => { output = (output + c.toString()).slice(-16_384) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    let gone = false
    const exited = new Promise<void>((resolve) => { child.once('close', () => { gone = true; resolve() }) })
    const kill = (sig: NodeJS.Signals): void => {
      if (gone) return
      try { process.kill(pid, sig) } catch {}
    }
    await writeOwner(server.dir, pid)
    const hostPort = `127.0.0.1:${clientPort}`
    try {
      await waitServing(hostPort, exited, opts.timeoutMs ?? 30_000)
    } catch (err) {
      const diagnostics = `${output.trim()}\n${logTail(server.logFile)}`
      kill('SIGKILL')
      await exited
      await rm(server.dir, { recursive: true, force: true })
      if (attempt < 3 && isBindConflict(diagnostics)) continue
      throw new Error(`ZooKeeper on ${hostPort} did not start: ${(err as Error).message}. Last log lines:\n${diagnostics}`, { cause: err })
    }
    let stopping: Promise<void> | undefined
    const stop = async (graceMs = 5000): Promise<void> => {
      stopping ??= (async () => {
        kill('SIGTERM')
        const timer = setTimeout(() => { kill('SIGKILL') }, graceMs)
        await exited
        clearTimeout(timer)
        await rm(server.dir, { recursive: true, force: true })
      })()
      await stopping
    }
    return { connectString: hostPort, pid, dir: server.dir, exited, stop, killSync: () => { kill('SIGKILL') } }
  }
}

async function waitServing (hostPort: string, exited: Promise<void>, timeoutMs: number): Promise<void> {
  let dead = false
  void exited.then(() => { dead = true })
  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  for (;;) {
    if (dead) throw new Error('the JVM exited during start-up')
    try {
      if (await probeServing(hostPort)) return
      last = 'not serving yet'
    } catch (err) {
      last = (err as Error).message
    }
    if (dead) throw new Error('the JVM exited during start-up')
    if (Date.now() > deadline) throw new Error(`not serving after ${timeoutMs} ms (${last})`)
    await sleep(50)
  }
}

async function freeLoopbackPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => { resolve() })
  })
  const address = server.address()
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  if (address === null || typeof address === 'string') throw new Error('unexpected server address')
  return address.port
}
