// `zkproxy dev`: a whole local stack in one command — a ZooKeeper from the local installation
// (temp data dir, free loopback port), a proxy, and `--replicas` bundled replicas — with a
// banner saying where everything is and what to try, and all of it stopped on Ctrl-C,
// SIGTERM or SIGHUP, or when the process that started dev (npm, a shell) goes away.
//
// The proxy runs in this process (startProxy, the wiring `zkproxy proxy` uses): one process
// fewer, its logs in the same stream, and its port-0 URLs known without parsing output. The
// replicas are child processes of the built CLI, because killing one is the demo: `kill PID`
// is how a user watches failover, and a process is what dies in production.
//
// Nothing outlives dev, even a SIGKILLed one: each replica watches a pipe from dev on its stdin
// (--exit-with-parent) and stops when it ends, and a watchdog process (src/dev/watchdog.ts)
// stops the ZooKeeper JVM and removes its temp dir, which Java would never do by itself.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { relative } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Logger } from 'pino'
import { commands, devConfig, type DevConfig, type HostPort } from '../config.js'
import { startWatchdog, type Watchdog } from '../dev/watchdog.js'
import { findZooKeeper, startStandalone, type StandaloneZooKeeper, type ZooKeeperInstallation } from '../dev/zookeeper-launcher.js'
import type { CliContext } from './lifecycle.js'
import { createQuietLogger } from './logger.js'
import { bounded } from './time.js'
import { startProxy, type ProxyRuntime } from './proxy-runtime.js'

const MAIN_JS = fileURLToPath(new URL('./main.js', import.meta.url))
const REPLICA_READY_MS = 20_000
// Replicas deregister first, then drain: 1 s keeps Ctrl-C snappy and still shows the order.
const REPLICA_DRAIN_MS = 1000
const REPLICA_STOP_GRACE_MS = 10_000
const PROXY_STOP_BOUND_MS = 10_000
const ZK_STOP_GRACE_MS = 5000
const SEE_REPLICAS_MS = 10_000
// How often dev checks that the process that started it is still there (see watchParent).
const PARENT_POLL_MS = 250

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const cfg = devConfig(raw)
  // What cannot work is said in one line (exit 2) before anything is printed or started.
  if (!existsSync(MAIN_JS)) throw new Error(`cannot find the built CLI at ${MAIN_JS}; run \`npm run build\` first`)
  const install = cfg.zk === undefined ? findZooKeeper() : undefined
  if (install !== undefined && 'error' in install) throw new Error(`${install.error} Or run \`npm run demo\` in a zkproxy checkout: scripts/setup.sh installs it.`)
  // Start-up chatter stays out of the way until the banner is printed (warnings still show).
  const { logger, release } = createQuietLogger(cfg.logLevel, 'dev')
  process.stdout.write(`zkproxy dev: starting ${cfg.zk === undefined ? 'ZooKeeper, ' : ''}a proxy and ${cfg.replicas} replica${cfg.replicas === 1 ? '' : 's'}… (Ctrl-C stops all of it)\n`)
  const stack = new DevStack(logger)
  ctx.onShutdown(async () => { await stack.stop() })
  // A closed terminal sends SIGHUP, which would end us without stopping the children.
  process.once('SIGHUP', () => { process.kill(process.pid, 'SIGTERM') })
  // npm forwards SIGINT and SIGTERM to us but dies of SIGHUP (or SIGKILL) alone.
  watchParent(() => {
    logger.warn({ ppid: process.ppid }, 'the process that started zkproxy dev is gone: stopping')
    process.kill(process.pid, 'SIGTERM')
  })
  // Any other way out (a crash, a second Ctrl-C) still takes the children with us.
  process.once('exit', () => { stack.killSync() })
  const summary = await stack.start(cfg, install)
  // Undefined: a signal arrived during start-up, and the shutdown it started ends the process.
  if (summary === undefined) return
  process.stdout.write(formatSummary(summary))
  // The same facts for scripts and tests, as one pino-shaped JSON line.
  process.stdout.write(JSON.stringify({ level: 30, time: new Date().toISOString(), pid: process.pid, hostname: hostname(), name: 'zkproxy-dev', msg: 'dev stack ready', ...summary }) + '\n')
  release()
}

/**
 * Calls `onOrphaned` once when this process is re-parented: whoever started it (npm, a shell)
 * is gone, and a demo nobody can stop with Ctrl-C any more must not linger.
 */
function watchParent (onOrphaned: () => void): void {
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onOrphaned()
  }, PARENT_POLL_MS)
  timer.unref()
}

interface Summary {
  proxy: string
  admin: string | null
  zk: string
  zookeeperPid: number | null
  replicas: Array<{ name: string, url: string, pid: number }>
}

class DevStack {
  readonly #log: Logger
  #zk: StandaloneZooKeeper | undefined
  #proxy: ProxyRuntime | undefined
  #watchdog: Watchdog | undefined
  readonly #replicas: Replica[] = []
  #startup: Promise<Summary> | undefined
  #stopping: Promise<void> | undefined

  constructor (log: Logger) {
    this.#log = log
  }

  async start (cfg: DevConfig, install: ZooKeeperInstallation | undefined): Promise<Summary | undefined> {
    this.#startup = this.#start(cfg, install)
    try {
      return await this.#startup
    } catch (err) {
      const interrupted = this.#stopping !== undefined
      // A part that fails to start takes the parts already running down with it.
      await this.stop()
      if (interrupted) return undefined
      throw err
    }
  }

  async #start (cfg: DevConfig, install: ZooKeeperInstallation | undefined): Promise<Summary> {
    // Before any child: whatever is spawned from here on is known to it at once.
    const watchdog = startWatchdog()
    this.#watchdog = watchdog
    let zk: string
    if (cfg.zk !== undefined) {
      zk = cfg.zk
      // Said loudly: an exported ZK_CONNECT sends the demo's replicas into that ensemble.
      this.#log.warn({ zk }, 'using an existing ZooKeeper (--zk / ZK_CONNECT); not starting one')
    } else {
      if (install === undefined) throw new Error('no ZooKeeper installation to start')
      this.#log.info({ home: install.home }, 'starting ZooKeeper')
      this.#zk = await startStandalone({ install, detached: true, onSpawn: (pid, dir) => { watchdog.stop(pid); watchdog.dir(dir) } })
      zk = this.#zk.connectString
      const pid = this.#zk.pid
      void this.#zk.exited.then(() => {
        watchdog.forget(pid)
        if (this.#stopping === undefined) this.#log.error({ pid }, 'ZooKeeper exited; the proxy keeps its last view of the targets')
      })
      this.#throwIfStopping()
    }
    this.#proxy = await startProxy(commands.proxy.fromArgs(['--zk', zk, '--listen', hostPort(cfg.listen), '--admin', hostPort(cfg.admin), '--drain-ms', '1000']), this.#log)
    this.#throwIfStopping()
    const names = Array.from({ length: cfg.replicas }, (_, i) => `replica-${i + 1}`)
    // Each replica joins this list as soon as it is spawned, so stop() finds it even when a
    // sibling fails first.
    await Promise.all(names.map(async (name) => {
      const r = new Replica(name, zk, cfg.logLevel, this.#log)
      this.#replicas.push(r)
      // Replicas stop by themselves when dev is gone; the watchdog waits for them (they
      // deregister through ZooKeeper) before it stops ZooKeeper.
      watchdog.await(r.pid)
      void r.exited.then(() => { watchdog.forget(r.pid) })
      await r.ready
    }))
    this.#throwIfStopping()
    await this.#seeReplicas(names)
    return {
      proxy: localUrl(this.#proxy.url),
      admin: this.#proxy.admin === undefined ? null : localUrl(this.#proxy.admin.url),
      zk,
      zookeeperPid: this.#zk?.pid ?? null,
      replicas: this.#replicas.map((r) => ({ name: r.name, url: r.url ?? '', pid: r.pid }))
    }
  }

  /** Waits (bounded) until the proxy routes to every replica, so the summary is true when printed. */
  async #seeReplicas (names: string[]): Promise<void> {
    const targets = this.#proxy?.targets
    if (targets === undefined) return
    const all = (): boolean => names.every((n) => targets.snapshot?.targets.some((t) => t.name === n) === true)
    if (all()) return
    await new Promise<void>((resolve) => {
      const done = (): void => { clearTimeout(timer); targets.off('snapshot', check); resolve() }
      const check = (): void => { if (all()) done() }
      const timer = setTimeout(() => {
        this.#log.warn({ expected: names }, 'the proxy does not see every replica yet')
        done()
      }, SEE_REPLICAS_MS)
      targets.on('snapshot', check)
    })
  }

  #throwIfStopping (): void {
    if (this.#stopping !== undefined) throw new Error('stopped during start-up')
  }

  /** Replicas and proxy first (they deregister through ZooKeeper), ZooKeeper last. */
  async stop (): Promise<void> {
    this.#stopping ??= (async () => {
      // Let a start-up in progress reach a step boundary, so nothing it spawns is missed.
      await this.#startup?.catch(() => {})
      await Promise.all([
        ...this.#replicas.map(async (r) => { await r.stop(REPLICA_STOP_GRACE_MS) }),
        bounded(this.#proxy?.stop(), PROXY_STOP_BOUND_MS)
      ])
      await this.#zk?.stop(ZK_STOP_GRACE_MS)
      this.#watchdog?.done()
      if (this.#zk !== undefined || this.#proxy !== undefined) this.#log.info('dev stack stopped')
    })()
    await this.#stopping
  }

  killSync (): void {
    for (const r of this.#replicas) r.killSync()
    this.#zk?.killSync()
  }
}

/** One bundled replica as a child process; its JSON log lines are re-logged under its name. */
class Replica {
  readonly name: string
  readonly pid: number
  readonly ready: Promise<void>
  readonly #child: ChildProcess
  readonly #exited: Promise<void>
  #url: string | undefined
  #gone = false
  #stopping = false
  #lastLines: string[] = []

  constructor (name: string, zk: string, logLevel: string, log: Logger) {
    this.name = name
    const args = [MAIN_JS, 'replica', '--zk', zk, '--port', '0', '--host', '127.0.0.1', '--name', name, '--drain-ms', String(REPLICA_DRAIN_MS), '--log-level', logLevel, '--exit-with-parent']
    // Own process group (detached): a Ctrl-C in the terminal reaches only us, and we stop the
    // replicas while ZooKeeper is still up so they can deregister. Stdin is a pipe from us that
    // is never written: it ends when we die, which --exit-with-parent watches for.
    this.#child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    if (this.#child.pid === undefined) throw new Error(`cannot start ${process.execPath}`)
    this.pid = this.#child.pid
    const child = this.#child
    const rlog = log.child({ replica: name })
    this.#exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#gone = true
        // Not restarted (watching a replica die is the demo); the line says how to add one back.
        if (!this.#stopping) rlog.warn({ pid: this.pid, code, signal, again: `${zkproxyCommand()} replica --zk ${zk} --port 0 --name ${name}` }, 'replica exited')
        resolve()
      })
    })
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${name} (pid ${this.pid}) did not report "replica listening" within ${REPLICA_READY_MS} ms: ${this.#lastLines.join(' | ')}`)) }, REPLICA_READY_MS)
      void this.#exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`${name} exited during start-up: ${this.#lastLines.join(' | ') || '(no output)'}`))
      })
      const onLine = (line: string): void => {
        this.#remember(line)
        const entry = parseJsonLine(line)
        if (entry === undefined) {
          if (line.trim() !== '') rlog.warn(line)
          return
        }
        if (entry.msg === 'replica listening' && typeof entry['url'] === 'string') {
          this.#url = entry['url']
          clearTimeout(timer)
          resolve()
        }
        relay(rlog, entry)
      }
      createInterface({ input: child.stdout! }).on('line', onLine)
      createInterface({ input: child.stderr! }).on('line', onLine)
    })
    // Rejections are handled by whoever awaits `ready`; this keeps a late one from being unhandled.
    this.ready.catch(() => {})
  }

  get url (): string | undefined { return this.#url }

  /** Settles when the process has exited and its output is read. */
  get exited (): Promise<void> { return this.#exited }

  #remember (line: string): void {
    this.#lastLines = [...this.#lastLines.slice(-4), line.slice(0, 300)]
  }

  #signal (sig: NodeJS.Signals): void {
    if (this.#gone) return
    try { process.kill(this.pid, sig) } catch {}
  }

  async stop (graceMs: number): Promise<void> {
    this.#stopping = true
    this.#signal('SIGTERM')
    const timer = setTimeout(() => { this.#signal('SIGKILL') }, graceMs)
    await this.#exited
    clearTimeout(timer)
  }

  killSync (): void {
    this.#signal('SIGKILL')
  }
}

interface LogEntry { level?: unknown, msg?: unknown, [k: string]: unknown }

function parseJsonLine (line: string): LogEntry | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const v: unknown = JSON.parse(line)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as LogEntry : undefined
  } catch {
    return undefined
  }
}

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' }

/** A child's pino line, logged again by our logger at its level (pretty in a terminal). */
function relay (log: Logger, entry: LogEntry): void {
  // time/pid/hostname/name are the child's pino bindings; ours replace them.
  const { level, msg, time: _time, pid: _pid, hostname: _host, name: _name, ...fields } = entry
  const method = LEVELS[typeof level === 'number' ? level : 30] ?? 'info'
  log[method](fields, typeof msg === 'string' ? msg : '')
}

function hostPort (hp: HostPort): string {
  return `${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`
}

/** A wildcard listener is reachable on loopback; that is the URL worth printing. */
function localUrl (url: string): string {
  const u = new URL(url)
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1'
  if (u.hostname === '[::]') u.hostname = '[::1]'
  return u.href
}

/** How to run this CLI from the current directory: relative when inside the checkout. */
function zkproxyCommand (): string {
  const cli = relative(process.cwd(), MAIN_JS)
  return `node ${cli.startsWith('..') ? MAIN_JS : cli}`
}

function formatSummary (s: Summary): string {
  const zkproxy = zkproxyCommand()
  const first = s.replicas[0]
  // The load test reads who served what from the proxy's admin listener (default :9901).
  const admin = s.admin === null ? ' --admin off' : s.admin === 'http://127.0.0.1:9901' ? '' : ` --admin ${s.admin}`
  const load = `npm run loadtest -- --url ${s.proxy}${admin} --duration 10 --connections 50`
  const lines = [
    '',
    'zkproxy dev is running. Ctrl-C stops all of it.',
    '',
    `  proxy       ${s.proxy}`,
    `  dashboard   ${s.admin ?? '(admin listener off)'}`,
    `  ZooKeeper   ${s.zk}${s.zookeeperPid === null ? ' (external)' : `  (pid ${s.zookeeperPid})`}`,
    ...s.replicas.map((r, i) => `  ${i === 0 ? 'replicas ' : '         '}   ${r.name.padEnd(10)} ${r.url.padEnd(24)} pid ${r.pid}`),
    '',
    'Try:',
    `  curl -sI ${s.proxy} | grep -iE '^(x-served-by|x-cache|age):'`,
    `  ${load}                  # through the cache: mostly hits`,
    `  ${load} --bypass-cache   # every request to a replica`,
    `  ${zkproxy} status --zk ${s.zk}`,
    ...(first === undefined
      ? []
      : [
          `  kill ${first.pid}      # ${first.name} deregisters, drains, exits: no request fails`,
          `  kill -9 ${first.pid}   # or crash it: the proxy fails over and ejects it`
        ]),
    'Add a replica (or one back after a kill); Ctrl-C stops it:',
    `  ${zkproxy} replica --zk ${s.zk} --port 0 --name replica-${s.replicas.length + 1}`,
    '',
    'Logs follow.',
    ''
  ]
  return lines.join('\n') + '\n'
}
