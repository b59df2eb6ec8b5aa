// Config schema and defaults for every subcommand (after fastify's initial config: parse,
// validate once, deep-freeze, hand each part its slice). This is the only module that reads
// argv and the environment: each flag has an environment twin (`--zk` ⇄ ZK_CONNECT, others
// ZKPROXY_<FLAG>), and a bad flag or value ends in exit code 2 with one line naming it (the
// exit itself happens in src/cli/, the only place that exits).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, InvalidArgumentError, Option } from 'commander'
import { validateTargetName } from './registry/codec.js'
import { DEFAULT_ALLOW_TARGETS } from './registry/address-policy.js'
import type { RoleIdentities } from './registry/acl-policy.js'
import { checkRoleCredential, parseAllowTargets, parseCidrs, parseRoleId, tlsFrom, zkAclFrom } from './config-security.js'

// ---- value parsers (each throws InvalidArgumentError with a reason; commander names the flag) ----

export function parseWholeNumber (min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const s = v.trim()
    if (!/^\d+$/.test(s)) throw new InvalidArgumentError(`expected a whole number, got "${v}"`)
    const n = Number(s)
    if (n < min || n > max) throw new InvalidArgumentError(`must be between ${min} and ${max}`)
    return n
  }
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 }

/** Sizes like 1048576, 512k, 1MiB, 2g (binary units). */
export function parseBytes (v: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(v.trim())
  const unit = m === null ? undefined : BYTE_UNITS[m[2]!.toLowerCase()]
  if (m === null || unit === undefined) throw new InvalidArgumentError(`expected a size like 1048576, 512k or 1MiB, got "${v}"`)
  return Number(m[1]) * unit
}

export interface HostPort { readonly host: string, readonly port: number }

/** `host:port`, `:port`, `[::1]:port`; port 0 allowed only where `allowZero`. */
export function parseHostPort (allowZero = false): (v: string) => HostPort {
  return (v) => {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(v.trim())
    if (m === null) throw new InvalidArgumentError(`expected host:port (e.g. 0.0.0.0:9000 or [::1]:9000), got "${v}"`)
    const port = Number(m[3])
    if (port > 65535 || (port === 0 && !allowZero)) throw new InvalidArgumentError(`port must be 1-65535, got ${m[3]}`)
    const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!)
    return { host, port }
  }
}

/** An absolute ZooKeeper path such as /targets (no trailing slash, no empty segments). */
export function parseZnodePath (v: string): string {
  const s = v.trim()
  if (!/^(\/[^/\s]+)+$/.test(s)) throw new InvalidArgumentError(`expected an absolute znode path like /targets, got "${v}"`)
  if (s.split('/').some(seg => seg === '.' || seg === '..' || seg === 'zookeeper')) throw new InvalidArgumentError(`znode path may not use ".", ".." or "zookeeper": "${v}"`)
  return s
}

/** ZooKeeper connect string: host:port[,host:port...][/chroot]. */
export function parseConnectString (v: string): string {
  const s = v.trim()
  const [hosts, ...chroot] = s.split('/')
  const ok = hosts !== undefined && hosts.split(',').every(h => /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(h))
  if (!ok) throw new InvalidArgumentError(`expected host:port[,host:port...][/chroot], got "${v}"`)
  if (chroot.length > 0) parseZnodePath(`/${chroot.join('/')}`)
  return s
}

export function parseHttpUrl (v: string): URL {
  let u: URL
  try { u = new URL(v) } catch { throw new InvalidArgumentError(`expected an http(s) URL, got "${v}"`) }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidArgumentError(`expected http: or https:, got "${u.protocol}"`)
  return u
}

export function parseRequestPath (v: string): string {
  if (!v.startsWith('/') || /\s/.test(v)) throw new InvalidArgumentError(`expected a path starting with /, got "${v}"`)
  return v
}

/** Target and proxy ids: the same rules as znode names read back (registry/codec.ts). */
export function parseTargetName (v: string): string {
  const reason = validateTargetName(v)
  if (reason !== undefined) throw new InvalidArgumentError(reason)
  return v
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

// ---- option table helpers ----

/** `--flag-name` → ZKPROXY_FLAG_NAME; `--zk` is ZK_CONNECT by contract. */
export function envName (flag: string): string {
  return flag === 'zk' ? 'ZK_CONNECT' : `ZKPROXY_${flag.toUpperCase().replace(/-/g, '_')}`
}

export function opt<T> (flags: string, description: string, parse?: (v: string) => T, defaultValue?: T, defaultText?: string): Option {
  const long = /--([a-z0-9-]+)/.exec(flags)?.[1]
  if (long === undefined) throw new Error(`bad option spec ${flags}`)
  const o = new Option(flags, description).env(envName(long))
  if (parse !== undefined) o.argParser((v: string) => parse(v))
  if (defaultValue !== undefined) o.default(defaultValue, defaultText)
  return o
}

function commonOptions (cmd: Command): Command {
  return cmd
    .addOption(opt('--zk <connect>', 'ZooKeeper connect string (host:port,...[/chroot])', parseConnectString, '127.0.0.1:2181'))
    .addOption(opt('--session-timeout-ms <ms>', 'ZooKeeper session timeout', parseWholeNumber(1000, 600_000), 10_000))
    .addOption(opt('--targets-path <path>', 'znode under which targets register', parseZnodePath, '/targets'))
    .addOption(opt('--cache-age-path <path>', 'znode holding the content revision', parseZnodePath, '/cacheAge'))
    .addOption(opt('--zk-auth <scheme:credential>', 'ZooKeeper auth, e.g. digest:user:password', parseZkAuth))
    .addOption(opt('--zk-auth-file <file>', 'read --zk-auth from a file (keeps secrets out of ps)'))
    .addOption(opt('--zk-acl-replicas <scheme:id>', 'ACL mode: the replicas\' identity, e.g. digest:replica:HASH (docs/security.md)', parseRoleId))
    .addOption(opt('--zk-acl-proxies <scheme:id>', 'ACL mode: the proxies\' identity, e.g. digest:proxy:HASH', parseRoleId))
    .addOption(opt('--log-level <level>', 'log level', (v) => {
      if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`)
      return v as LogLevel
    }, 'info' as LogLevel))
    .addOption(opt('--log-pretty', 'human-readable logs instead of JSON'))
}

export interface ZkAuth { readonly scheme: string, readonly credential: string }

export function parseZkAuth (v: string): ZkAuth {
  const i = v.indexOf(':')
  if (i <= 0 || i === v.length - 1) throw new InvalidArgumentError('expected scheme:credential, e.g. digest:user:password')
  return { scheme: v.slice(0, i), credential: v.slice(i + 1).trim() }
}

// ---- per-command config objects ----

export interface CommonConfig {
  readonly zk: string
  readonly sessionTimeoutMs: number
  readonly targetsPath: string
  readonly cacheAgePath: string
  readonly zkAuth: readonly ZkAuth[]
  /** ACL mode (both --zk-acl-* given), else undefined: nodes keep the open ACL. */
  readonly zkAcl: RoleIdentities | undefined
  readonly logLevel: LogLevel
  readonly logPretty: boolean
}

export interface ProxyConfig extends CommonConfig {
  readonly listen: HostPort
  readonly admin: HostPort | undefined
  readonly proxiesPath: string
  readonly id: string | undefined
  readonly attempts: number
  readonly countFlushMs: number
  readonly retryBodyLimitBytes: number
  readonly bodyLimitBytes: number
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly bodyTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly keepAliveTimeoutMs: number
  readonly maxHeaderBytes: number
  readonly maxConnections: number
  readonly cacheTtlSec: number
  readonly cacheDefaultTtlSec: number
  readonly cacheMaxEntries: number
  readonly cacheMaxBytes: number
  readonly cacheMaxObjectBytes: number
  readonly staleIfErrorSec: number
  readonly accessLog: boolean
  readonly drainMs: number
  /** --allow-targets entries (see src/registry/address-policy.ts). */
  readonly allowTargets: readonly string[]
  /** --trust-proxy CIDRs: peers whose X-Forwarded-Proto/-Host are kept. */
  readonly trustProxy: readonly string[]
  /** --tls-cert/--tls-key (PEM files): the public listener speaks HTTPS. */
  readonly tls: { readonly certFile: string, readonly keyFile: string } | undefined
  /** --upstream-ca (PEM file): the CAs trusted for https:// targets instead of Node's. */
  readonly upstreamCaFile: string | undefined
  /** --state-file: where the view of the targets is saved (src/registry/state-file.ts). */
  readonly stateFile: string | undefined
}

export interface ReplicaConfig extends CommonConfig {
  readonly host: string
  readonly port: number
  readonly dir: string
  readonly name: string | undefined
  readonly revision: string | undefined
  readonly drainMs: number
  readonly maxAgeSec: number
  readonly exitWithParent: boolean
}

export interface RegisterConfig extends CommonConfig {
  readonly url: URL
  readonly name: string | undefined
  readonly revision: string | undefined
  readonly healthPath: string | undefined
  readonly healthIntervalMs: number
  readonly healthTimeoutMs: number
  readonly unhealthyAfter: number
  readonly healthyAfter: number
}

export interface DevConfig {
  readonly replicas: number
  readonly listen: HostPort
  readonly admin: HostPort
  readonly logLevel: LogLevel
  /** An existing ZooKeeper to use instead of starting one (undefined: start a local one). */
  readonly zk: string | undefined
}

export interface StatusConfig extends CommonConfig {
  readonly json: boolean
  readonly proxiesPath: string
  readonly timeoutMs: number
}

/** The bundled demo site, used when `--dir` is not given (src/ in tests, dist/src/ when built). */
export const bundledSiteDir = [new URL('../public', import.meta.url), new URL('../../public', import.meta.url)]
  .map(u => fileURLToPath(u))
  .find(d => existsSync(join(d, 'index.html'))) ?? fileURLToPath(new URL('../../public', import.meta.url))

export const commandOptions = {
  proxy: (cmd: Command) => commonOptions(cmd)
    .addOption(opt('--listen <host:port>', 'public listener', parseHostPort(true), { host: '0.0.0.0', port: 9000 }, '0.0.0.0:9000'))
    .addOption(opt('--admin <host:port>', 'admin listener (health, targets, metrics, dashboard); "off" disables', (v) => v === 'off' ? 'off' : parseHostPort(true)(v), { host: '127.0.0.1', port: 9901 }, '127.0.0.1:9901'))
    .addOption(opt('--proxies-path <path>', 'znode under which proxies announce themselves', parseZnodePath, '/proxies'))
    .addOption(opt('--id <id>', 'this proxy\'s id under --proxies-path (default: host name and --listen port)', parseTargetName))
    .addOption(opt('--attempts <n>', 'targets tried per request (failover)', parseWholeNumber(1, 20), 3))
    .addOption(opt('--count-flush-ms <ms>', 'how often request counts are written to ZooKeeper', parseWholeNumber(10, 60_000), 250))
    .addOption(opt('--retry-body-limit <bytes>', 'request bodies up to this size are buffered so they can be replayed on failover', parseBytes, 1024 * 1024, '1MiB'))
    .addOption(opt('--body-limit <bytes>', 'largest request body accepted (413 above)', parseBytes, 100 * 1024 * 1024, '100MiB'))
    .addOption(opt('--connect-timeout-ms <ms>', 'upstream connect timeout (then failover)', parseWholeNumber(1, 600_000), 2000))
    .addOption(opt('--headers-timeout-ms <ms>', 'upstream response-headers timeout (504)', parseWholeNumber(1, 3_600_000), 30_000))
    .addOption(opt('--body-timeout-ms <ms>', 'upstream idle time between body chunks (then the response is aborted)', parseWholeNumber(1, 3_600_000), 30_000))
    .addOption(opt('--request-timeout-ms <ms>', 'downstream: time to receive a whole request (slow clients get 408)', parseWholeNumber(1, 3_600_000), 30_000))
    .addOption(opt('--keep-alive-timeout-ms <ms>', 'downstream idle keep-alive timeout', parseWholeNumber(1, 600_000), 5000))
    .addOption(opt('--max-header-bytes <bytes>', 'largest request header section (431 above)', parseBytes, 16 * 1024, '16KiB'))
    .addOption(opt('--max-connections <n>', 'downstream connection limit (0 = unlimited)', parseWholeNumber(0), 10_000))
    .addOption(opt('--cache-ttl <sec>', 'longest time a response is cached; 0 turns the cache off', parseWholeNumber(0, 31_536_000), 120))
    .addOption(opt('--cache-default-ttl <sec>', 'freshness for responses without explicit freshness (0: heuristic only)', parseWholeNumber(0, 31_536_000), 0))
    .addOption(opt('--cache-max-entries <n>', 'cache entry bound (LRU eviction)', parseWholeNumber(1), 10_000))
    .addOption(opt('--cache-max-bytes <bytes>', 'cache size bound (LRU eviction)', parseBytes, 256 * 1024 * 1024, '256MiB'))
    .addOption(opt('--cache-max-object-bytes <bytes>', 'larger responses stream through unstored', parseBytes, 1024 * 1024, '1MiB'))
    .addOption(opt('--stale-if-error <sec>', 'serve a stored response up to this long past expiry when every target fails', parseWholeNumber(0, 31_536_000), 0))
    .addOption(opt('--access-log', 'one log line per request'))
    .addOption(opt('--allow-targets <list>', 'addresses traffic may go to: CIDRs, "private", "any", host names, *.suffix', parseAllowTargets, [...DEFAULT_ALLOW_TARGETS], DEFAULT_ALLOW_TARGETS.join(',')))
    .addOption(opt('--trust-proxy <cidrs>', 'peers whose X-Forwarded-Proto/-Host are kept (default: none)', parseCidrs))
    .addOption(opt('--tls-cert <file>', 'serve HTTPS on --listen with this certificate chain (PEM; needs --tls-key)'))
    .addOption(opt('--tls-key <file>', 'private key for --tls-cert (PEM)'))
    .addOption(opt('--upstream-ca <file>', 'CA certificates (PEM) trusted for https:// targets, instead of Node\'s bundled ones'))
    .addOption(opt('--drain-ms <ms>', 'on SIGTERM, time to finish in-flight requests', parseWholeNumber(0, 600_000), 5000))
    .addOption(opt('--state-file <path>', 'save the view of the targets here; served at start until ZooKeeper delivers one')),
  replica: (cmd: Command) => commonOptions(cmd)
    .addOption(opt('--port <port>', 'port to serve on (0: any free port)', parseWholeNumber(0, 65535)).makeOptionMandatory())
    .addOption(opt('--host <host>', 'address to serve on (and to register)', (v) => v.trim(), '127.0.0.1'))
    .addOption(opt('--dir <dir>', 'folder to serve', (v) => v, bundledSiteDir, 'the bundled demo site'))
    .addOption(opt('--name <name>', 'target name (default host:port)', parseTargetName))
    .addOption(opt('--revision <rev>', 'content revision for /cacheAge (default: git commit of --dir, else start time)'))
    .addOption(opt('--drain-ms <ms>', 'after deregistering on SIGTERM, keep serving this long', parseWholeNumber(0, 600_000), 2000))
    .addOption(opt('--max-age <sec>', 'Cache-Control max-age of served files', parseWholeNumber(0, 31_536_000), 120))
    .addOption(opt('--exit-with-parent', 'shut down gracefully when the parent process goes away (used by `zkproxy dev`)')),
  register: (cmd: Command) => commonOptions(cmd)
    .addOption(opt('--url <url>', 'the running backend to register', parseHttpUrl).makeOptionMandatory())
    .addOption(opt('--name <name>', 'target name (default host:port of --url)', parseTargetName))
    .addOption(opt('--revision <rev>', 'content revision for /cacheAge (default: start time)'))
    .addOption(opt('--health-path <path>', 'hold the registration only while GET <url><path> answers 2xx', parseRequestPath))
    .addOption(opt('--health-interval-ms <ms>', 'health check interval', parseWholeNumber(50, 600_000), 2000))
    .addOption(opt('--health-timeout-ms <ms>', 'health check timeout', parseWholeNumber(10, 600_000), 1000))
    .addOption(opt('--unhealthy-after <n>', 'consecutive failed checks before deregistering', parseWholeNumber(1, 100), 3))
    .addOption(opt('--healthy-after <n>', 'consecutive good checks before registering again', parseWholeNumber(1, 100), 1)),
  dev: (cmd: Command) => cmd
    .addOption(opt('--replicas <n>', 'bundled replicas to start', parseWholeNumber(0, 32), 3))
    .addOption(opt('--listen <host:port>', 'proxy public listener', parseHostPort(true), { host: '0.0.0.0', port: 9000 }, '0.0.0.0:9000'))
    .addOption(opt('--admin <host:port>', 'proxy admin listener', parseHostPort(true), { host: '127.0.0.1', port: 9901 }, '127.0.0.1:9901'))
    .addOption(opt('--log-level <level>', 'log level', (v) => v as LogLevel, 'info' as LogLevel))
    .addOption(opt('--zk <connect>', 'use this ZooKeeper instead of starting a local one (host:port,...[/chroot])', parseConnectString)),
  status: (cmd: Command) => commonOptions(cmd)
    .addOption(opt('--json', 'machine-readable output'))
    .addOption(opt('--proxies-path <path>', 'znode under which proxies announce themselves', parseZnodePath, '/proxies'))
    .addOption(opt('--timeout-ms <ms>', 'give up (exit 2) when ZooKeeper does not answer within this time', parseWholeNumber(100, 600_000), 5000))
} as const

export type CommandName = keyof typeof commandOptions

// ---- building the frozen config objects from commander's parsed options ----

type Raw = Record<string, unknown>

function deepFreeze<T> (o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o) && !(o instanceof URL)) {
    Object.freeze(o)
    for (const v of Object.values(o as object)) deepFreeze(v)
  }
  return o
}

function zkAuthFrom (raw: Raw): ZkAuth[] {
  const auth: ZkAuth[] = []
  if (raw['zkAuth'] !== undefined) auth.push(raw['zkAuth'] as ZkAuth)
  if (typeof raw['zkAuthFile'] === 'string') {
    let text: string
    try { text = readFileSync(raw['zkAuthFile'], 'utf8') } catch (err) {
      throw new InvalidArgumentError(`--zk-auth-file: cannot read ${raw['zkAuthFile']}: ${(err as Error).message}`)
    }
    auth.push(parseZkAuth(text.trim()))
  }
  return auth
}

function common (raw: Raw, role?: 'replicas' | 'proxies'): CommonConfig {
  const c: CommonConfig = {
    zk: raw['zk'] as string,
    sessionTimeoutMs: raw['sessionTimeoutMs'] as number,
    targetsPath: raw['targetsPath'] as string,
    cacheAgePath: raw['cacheAgePath'] as string,
    zkAuth: zkAuthFrom(raw),
    zkAcl: zkAclFrom(raw),
    logLevel: raw['logLevel'] as LogLevel,
    logPretty: raw['logPretty'] === true
  }
  if (role !== undefined) checkRoleCredential(c, role)
  return c
}

export function proxyConfig (raw: Raw): ProxyConfig {
  const admin = raw['admin']
  return deepFreeze({
    ...common(raw, 'proxies'),
    listen: raw['listen'] as HostPort,
    admin: admin === 'off' ? undefined : admin as HostPort,
    proxiesPath: raw['proxiesPath'] as string,
    id: raw['id'] as string | undefined,
    attempts: raw['attempts'] as number,
    countFlushMs: raw['countFlushMs'] as number,
    retryBodyLimitBytes: raw['retryBodyLimit'] as number,
    bodyLimitBytes: raw['bodyLimit'] as number,
    connectTimeoutMs: raw['connectTimeoutMs'] as number,
    headersTimeoutMs: raw['headersTimeoutMs'] as number,
    bodyTimeoutMs: raw['bodyTimeoutMs'] as number,
    requestTimeoutMs: raw['requestTimeoutMs'] as number,
    keepAliveTimeoutMs: raw['keepAliveTimeoutMs'] as number,
    maxHeaderBytes: raw['maxHeaderBytes'] as number,
    maxConnections: raw['maxConnections'] as number,
    cacheTtlSec: raw['cacheTtl'] as number,
    cacheDefaultTtlSec: raw['cacheDefaultTtl'] as number,
    cacheMaxEntries: raw['cacheMaxEntries'] as number,
    cacheMaxBytes: raw['cacheMaxBytes'] as number,
    cacheMaxObjectBytes: raw['cacheMaxObjectBytes'] as number,
    staleIfErrorSec: raw['staleIfError'] as number,
    accessLog: raw['accessLog'] === true,
    drainMs: raw['drainMs'] as number,
    allowTargets: raw['allowTargets'] as string[],
    trustProxy: (raw['trustProxy'] as string[] | undefined) ?? [],
    tls: tlsFrom(raw),
    upstreamCaFile: raw['upstreamCa'] as string | undefined,
    stateFile: raw['stateFile'] as string | undefined
  })
}

export function replicaConfig (raw: Raw): ReplicaConfig {
  return deepFreeze({
    ...common(raw, 'replicas'),
    host: raw['host'] as string,
    port: raw['port'] as number,
    dir: raw['dir'] as string,
    name: raw['name'] as string | undefined,
    revision: raw['revision'] as string | undefined,
    drainMs: raw['drainMs'] as number,
    maxAgeSec: raw['maxAge'] as number,
    exitWithParent: raw['exitWithParent'] === true
  })
}

export function registerConfig (raw: Raw): RegisterConfig {
  return deepFreeze({
    ...common(raw, 'replicas'),
    url: raw['url'] as URL,
    name: raw['name'] as string | undefined,
    revision: raw['revision'] as string | undefined,
    healthPath: raw['healthPath'] as string | undefined,
    healthIntervalMs: raw['healthIntervalMs'] as number,
    healthTimeoutMs: raw['healthTimeoutMs'] as number,
    unhealthyAfter: raw['unhealthyAfter'] as number,
    healthyAfter: raw['healthyAfter'] as number
  })
}

export function devConfig (raw: Raw): DevConfig {
  return deepFreeze({
    replicas: raw['replicas'] as number,
    listen: raw['listen'] as HostPort,
    admin: raw['admin'] as HostPort,
    logLevel: raw['logLevel'] as LogLevel,
    zk: raw['zk'] as string | undefined
  })
}

export function statusConfig (raw: Raw): StatusConfig {
  return deepFreeze({ ...common(raw), json: raw['json'] === true, proxiesPath: raw['proxiesPath'] as string, timeoutMs: raw['timeoutMs'] as number })
}

export { Command, InvalidArgumentError }
