// Config schema and defaults for every subcommand (after fastify's initial config: parse,
// validate once, deep-freeze, hand each part its slice). One table per command, one entry per
// flag: its key is the config field, and the entry holds the flag's usage, description, value
// type (parser, unit, range), default and environment twin (`--zk` ⇄ ZK_CONNECT, others
// ZKPROXY_<FLAG>). Commander's options, `--help` and the config types all come from these
// tables; a bad flag or value ends in exit code 2 with one line naming it (the exit itself
// happens in src/cli/, the only place that exits).
//
// Adding a flag is one entry in its command's table, e.g. in `proxyFlags`:
//   stateFile: flag('--state-file <path>', 'where the last view of the targets is kept', filePath),
// which gives `ProxyConfig.stateFile: string | undefined`, env ZKPROXY_STATE_FILE and a --help
// line; `list(...)` instead of `flag(...)` makes it repeatable (`readonly T[]`, env items
// comma-separated). Only a value derived from several flags needs a line in `build`.
import { existsSync, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidArgumentError } from 'commander'
import { DEFAULT_ALLOW_TARGETS } from './registry/address-policy.js'
import { parseRoute } from './routes.js'
import { purgeFilterProblem } from './purge-filter.js'
import { defineCommand, flag, list, toggle, type Values } from './config-table.js'
import {
  bytes, connectString, count, filePath, hostPort, hostPortOrOff, httpUrl, logLevel, millis, oneOf, port,
  requestPath, seconds, targetName, text, zkAuth, znodePath, type ValueType, type ZkAuth
} from './config-values.js'
import { allowTargets, checkRoleCredential, cidrs, roleId, roleIdentities, tlsFiles } from './config-security.js'

export type { HostPort, LogLevel, ZkAuth } from './config-values.js'

/** The bundled demo site, used when `--dir` is not given (src/ in tests, dist/src/ when built). */
export const bundledSiteDir = [new URL('../public', import.meta.url), new URL('../../public', import.meta.url)]
  .map(u => fileURLToPath(u))
  .find(d => existsSync(join(d, 'index.html'))) ?? fileURLToPath(new URL('../../public', import.meta.url))

// ---- the flags every ZooKeeper client command shares ----

const zkFlags = {
  zk: flag('--zk <connect>', 'ZooKeeper connect string (host:port,...[/chroot])', connectString, { default: '127.0.0.1:2181' }),
  sessionTimeoutMs: flag('--session-timeout-ms <ms>', 'ZooKeeper session timeout', millis(1000, 600_000), { default: 10_000 }),
  targetsPath: flag('--targets-path <path>', 'znode under which targets register', znodePath, { default: '/targets' }),
  cacheAgePath: flag('--cache-age-path <path>', 'znode holding the content revision', znodePath, { default: '/cacheAge' }),
  zkAuth: flag('--zk-auth <scheme:credential>', 'ZooKeeper auth, e.g. digest:user:password', zkAuth),
  zkAuthFile: flag('--zk-auth-file <file>', 'read --zk-auth from a file (keeps secrets out of ps)', filePath),
  zkAclReplicas: flag('--zk-acl-replicas <scheme:id>', 'ACL mode: the replicas\' identity, e.g. digest:replica:HASH (docs/security.md)', roleId),
  zkAclProxies: flag('--zk-acl-proxies <scheme:id>', 'ACL mode: the proxies\' identity, e.g. digest:proxy:HASH', roleId),
  logLevel: flag('--log-level <level>', 'log level', logLevel, { default: 'info' }),
  logPretty: toggle('--log-pretty', 'human-readable logs instead of JSON')
}

function authFromFile (file: string | undefined): ZkAuth[] {
  if (file === undefined) return []
  let content: string
  try { content = readFileSync(file, 'utf8') } catch (err) {
    throw new InvalidArgumentError(`--zk-auth-file: cannot read ${file}: ${(err as Error).message}`)
  }
  return [zkAuth.parse(content.trim())]
}

/** The shared fields: --zk-auth and --zk-auth-file become one list, the --zk-acl-* pair one value. */
function common<V extends Values<typeof zkFlags>> (v: V, role?: 'replicas' | 'proxies') {
  const { zkAuth: one, zkAuthFile, zkAclReplicas, zkAclProxies, ...rest } = v
  const auth: readonly ZkAuth[] = [...(one === undefined ? [] : [one]), ...authFromFile(zkAuthFile)]
  const c = { ...rest, zkAuth: auth, zkAcl: roleIdentities(zkAclReplicas, zkAclProxies) }
  if (role !== undefined) checkRoleCredential(c, role)
  return c
}

/** A header field name (lower-cased), or `off` for none (''). */
const fieldName: ValueType<string> = {
  hint: 'a field name or off',
  parse: (v) => {
    if (v.trim().toLowerCase() === 'off') return ''
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v.trim())) throw new InvalidArgumentError(`"${v}" is not a header field name`)
    return v.trim().toLowerCase()
  }
}

/** `--workers`: a count of processes, or `auto` for one per available core. */
const workerCount: ValueType<number> = {
  hint: '1-256 or auto',
  parse: (v) => v.trim() === 'auto' ? availableParallelism() : count(1, 256).parse(v)
}

/** A `--route` value, `HOST[/PATH-PREFIX]` (`*.example.com` for any one label): docs/routing.md. */
const routeValue: ValueType<string> = {
  hint: '',
  parse: (v) => {
    const r = parseRoute(v)
    if (!r.ok) throw new InvalidArgumentError(r.reason)
    return v
  }
}

/** The routes flags of `replica` and `register`, and the check that ties them together. */
const routeFlags = {
  routes: list('--route <host[/path-prefix]>', 'serve only requests for this Host (and path prefix); *.example.com for any one label (docs/routing.md)', routeValue, { defaultText: 'none, the default pool', env: 'ZKPROXY_ROUTE' }),
  stripPrefix: toggle('--strip-prefix', 'serve from / what the --route path prefixes name: proxies remove the matched prefix before forwarding')
}

function withRoutes<V extends { readonly routes: readonly string[], readonly stripPrefix: boolean }> (v: V): V {
  // Without a path prefix there is nothing to strip: the flag would silently do nothing.
  if (v.stripPrefix && !v.routes.some(r => { const p = parseRoute(r); return p.ok && p.route.pathPrefix !== '/' })) {
    throw new InvalidArgumentError('--strip-prefix needs a --route with a path prefix (e.g. --route example.com/api)')
  }
  return v
}

// ---- one table per command ----

const proxyFlags = {
  ...zkFlags,
  listen: flag('--listen <host:port>', 'public listener', hostPort(true), { default: { host: '0.0.0.0', port: 9000 }, defaultText: '0.0.0.0:9000' }),
  admin: flag('--admin <host:port>', 'admin listener (health, targets, metrics, dashboard); "off" disables', hostPortOrOff(true), { default: { host: '127.0.0.1', port: 9901 }, defaultText: '127.0.0.1:9901' }),
  proxiesPath: flag('--proxies-path <path>', 'znode under which proxies announce themselves', znodePath, { default: '/proxies' }),
  id: flag('--id <id>', 'this proxy\'s id under --proxies-path (default: host name and --listen port)', targetName),
  attempts: flag('--attempts <n>', 'targets tried per request (failover)', count(1, 20), { default: 3 }),
  countFlushMs: flag('--count-flush-ms <ms>', 'how often request counts are written to ZooKeeper', millis(10, 60_000), { default: 250 }),
  retryBodyLimitBytes: flag('--retry-body-limit <bytes>', 'request bodies up to this size are buffered so they can be replayed on failover', bytes, { default: 1024 * 1024, defaultText: '1MiB' }),
  bodyLimitBytes: flag('--body-limit <bytes>', 'largest request body accepted (413 above)', bytes, { default: 100 * 1024 * 1024, defaultText: '100MiB' }),
  connectTimeoutMs: flag('--connect-timeout-ms <ms>', 'upstream connect timeout (then failover)', millis(1, 600_000), { default: 2000 }),
  headersTimeoutMs: flag('--headers-timeout-ms <ms>', 'upstream response-headers timeout (504)', millis(1, 3_600_000), { default: 30_000 }),
  bodyTimeoutMs: flag('--body-timeout-ms <ms>', 'upstream idle time between body chunks (then the response is aborted)', millis(1, 3_600_000), { default: 30_000 }),
  requestTimeoutMs: flag('--request-timeout-ms <ms>', 'downstream: time to receive a whole request (slow clients get 408)', millis(1, 3_600_000), { default: 30_000 }),
  keepAliveTimeoutMs: flag('--keep-alive-timeout-ms <ms>', 'downstream idle keep-alive timeout', millis(1, 600_000), { default: 5000 }),
  maxHeaderBytes: flag('--max-header-bytes <bytes>', 'largest request header section (431 above)', bytes, { default: 16 * 1024, defaultText: '16KiB' }),
  maxConnections: flag('--max-connections <n>', 'downstream connection limit (0 = unlimited)', count(0), { default: 10_000 }),
  cacheTtlSec: flag('--cache-ttl <sec>', 'longest time a response is cached; 0 turns the cache off', seconds(0, 31_536_000), { default: 120 }),
  cacheDefaultTtlSec: flag('--cache-default-ttl <sec>', 'freshness for responses without explicit freshness (0: heuristic only)', seconds(0, 31_536_000), { default: 0 }),
  cacheMaxEntries: flag('--cache-max-entries <n>', 'cache entry bound (LRU eviction)', count(1), { default: 10_000 }),
  cacheMaxBytes: flag('--cache-max-bytes <bytes>', 'cache size bound (LRU eviction)', bytes, { default: 256 * 1024 * 1024, defaultText: '256MiB' }),
  cacheMaxObjectBytes: flag('--cache-max-object-bytes <bytes>', 'larger responses stream through unstored', bytes, { default: 1024 * 1024, defaultText: '1MiB' }),
  staleIfErrorSec: flag('--stale-if-error <sec>', 'serve a stored response up to this long past expiry when every target fails', seconds(0, 31_536_000), { default: 0 }),
  accessLog: toggle('--access-log', 'one log line per request'),
  allowTargets: flag('--allow-targets <list>', 'addresses traffic may go to: CIDRs, "private", "any", host names, *.suffix', allowTargets, { default: [...DEFAULT_ALLOW_TARGETS], defaultText: DEFAULT_ALLOW_TARGETS.join(',') }),
  trustProxy: flag('--trust-proxy <cidrs>', 'peers whose X-Forwarded-Proto/-Host are kept', cidrs, { default: [], defaultText: 'none' }),
  tlsCert: flag('--tls-cert <file>', 'serve HTTPS on --listen with this certificate chain (PEM; needs --tls-key)', filePath),
  tlsKey: flag('--tls-key <file>', 'private key for --tls-cert (PEM)', filePath),
  upstreamCaFile: flag('--upstream-ca <file>', 'CA certificates (PEM) trusted for https:// targets, instead of Node\'s bundled ones', filePath),
  drainMs: flag('--drain-ms <ms>', 'on SIGTERM, time to finish in-flight requests and open tunnels', millis(0, 600_000), { default: 5000 }),
  upstreamHost: flag('--upstream-host <client|target>', 'the Host targets get: the client\'s, or the target\'s own host:port', oneOf(['client', 'target'] as const), { default: 'client' }),
  tunnelIdleTimeoutMs: flag('--tunnel-idle-timeout-ms <ms>', 'a WebSocket tunnel with no byte either way for this long is closed', millis(1, 86_400_000), { default: 300_000 }),
  maxTunnels: flag('--max-tunnels <n>', 'open WebSocket tunnels at most (503 too_many_tunnels beyond)', count(0), { default: 10_000 }),
  requestBufferBytes: flag('--request-buffer-bytes <bytes>', 'request bodies up to this size (chunked ones too) are read whole before a target is chosen (default: --retry-body-limit)', bytes),
  responseBufferBytes: flag('--response-buffer-bytes <bytes>', 'response bytes held for a slow client before the target is paused', bytes, { default: 1024 * 1024, defaultText: '1MiB' }),
  sendTimeoutMs: flag('--send-timeout-ms <ms>', 'a client that takes no response byte for this long is cut (nginx send_timeout)', millis(1, 3_600_000), { default: 60_000 }),
  upstreamConnections: flag('--upstream-connections <n>', 'connections per target at most', count(1, 65_535), { default: 256 }),
  upstreamQueue: flag('--upstream-queue <n>', 'requests waiting for a connection to one target at most (503 beyond)', count(0), { default: 1024 }),
  upstreamQueueTimeoutMs: flag('--upstream-queue-timeout-ms <ms>', 'longest wait for a connection to a target (504 after)', millis(1, 600_000), { default: 10_000 }),
  maxRequestsPerClient: flag('--max-requests-per-client <n>', 'concurrent requests per client address, pipelined ones included (429 beyond; 0 = unlimited); keep it below --upstream-connections', count(0), { default: 128 }),
  purgePath: flag('--purge-path <path>', 'znode under which fleet-wide cache purges are published (zkproxy purge)', znodePath, { default: '/purges' }),
  cdnCacheControlField: flag('--cdn-cache-control-field <name>', 'targeted cache-control field obeyed before Cache-Control (RFC 9213); "off" for none', fieldName, { default: 'cdn-cache-control', defaultText: 'CDN-Cache-Control' }),
  stateFile: flag('--state-file <path>', 'save the view of the targets here; served at start until ZooKeeper delivers one', filePath),
  workers: flag('--workers <n|auto>', 'processes serving --listen ("auto": one per available core; 1: this process alone)', workerCount, { default: 1 })
}

const proxy = defineCommand({
  name: 'proxy',
  summary: 'run a proxy routing to the least-used live target in ZooKeeper',
  flags: proxyFlags,
  build: (v) => {
    const { tlsCert, tlsKey, requestBufferBytes, ...rest } = v
    // --request-buffer-bytes follows --retry-body-limit unless given: a buffered body is a replayable one.
    return { ...common(rest, 'proxies'), tls: tlsFiles(tlsCert, tlsKey), requestBufferBytes: requestBufferBytes ?? rest.retryBodyLimitBytes }
  }
})

const replicaFlags = {
  ...zkFlags,
  port: flag('--port <port>', 'port to serve on (0: any free port)', port, { required: true }),
  host: flag('--host <host>', 'address to serve on (and to register)', text, { default: '127.0.0.1' }),
  dir: flag('--dir <dir>', 'folder to serve', filePath, { default: bundledSiteDir, defaultText: 'the bundled demo site' }),
  name: flag('--name <name>', 'target name (default host:port)', targetName),
  revision: flag('--revision <rev>', 'content revision for /cacheAge (default: git commit of --dir, else a hash of its files)', text),
  drainMs: flag('--drain-ms <ms>', 'after deregistering on SIGTERM, keep serving this long', millis(0, 600_000), { default: 2000 }),
  maxAgeSec: flag('--max-age <sec>', 'Cache-Control max-age of served files', seconds(0, 31_536_000), { default: 120 }),
  exitWithParent: toggle('--exit-with-parent', 'shut down gracefully when the parent process goes away, or stdin, if a pipe, ends (used by `zkproxy dev`)'),
  ...routeFlags
}

const replica = defineCommand({
  name: 'replica',
  summary: 'serve a static folder and register it as a target',
  flags: replicaFlags,
  build: (v) => withRoutes(common(v, 'replicas'))
})

const registerFlags = {
  ...zkFlags,
  url: flag('--url <url>', 'the running backend to register', httpUrl, { required: true }),
  name: flag('--name <name>', 'target name (default host:port of --url)', targetName),
  revision: flag('--revision <rev>', 'content revision for /cacheAge (default: none, /cacheAge is left alone)', text),
  healthPath: flag('--health-path <path>', 'hold the registration only while GET <url><path> answers 2xx', requestPath),
  healthIntervalMs: flag('--health-interval-ms <ms>', 'health check interval', millis(50, 600_000), { default: 2000 }),
  healthTimeoutMs: flag('--health-timeout-ms <ms>', 'health check timeout', millis(10, 600_000), { default: 1000 }),
  unhealthyAfter: flag('--unhealthy-after <n>', 'consecutive failed checks before deregistering', count(1, 100), { default: 3 }),
  healthyAfter: flag('--healthy-after <n>', 'consecutive good checks before registering again', count(1, 100), { default: 1 }),
  ...routeFlags
}

const register = defineCommand({
  name: 'register',
  summary: 'register an already-running backend (any language) as a target',
  flags: registerFlags,
  build: (v) => withRoutes(common(v, 'replicas'))
})

const devFlags = {
  replicas: flag('--replicas <n>', 'bundled replicas to start', count(0, 32), { default: 3 }),
  listen: flag('--listen <host:port>', 'proxy public listener', hostPort(true), { default: { host: '127.0.0.1', port: 9000 }, defaultText: '127.0.0.1:9000' }),
  admin: flag('--admin <host:port>', 'proxy admin listener (dashboard)', hostPort(true), { default: { host: '127.0.0.1', port: 9901 }, defaultText: '127.0.0.1:9901' }),
  logLevel: flag('--log-level <level>', 'log level', logLevel, { default: 'info' }),
  zk: flag('--zk <connect>', 'use this ZooKeeper instead of starting a local one (host:port,...[/chroot])', connectString)
}

const dev = defineCommand({
  name: 'dev',
  summary: 'try it locally: ZooKeeper, a proxy and replicas in one command',
  flags: devFlags,
  build: (v) => ({ ...v })
})

const statusFlags = {
  ...zkFlags,
  json: toggle('--json', 'machine-readable output'),
  proxiesPath: flag('--proxies-path <path>', 'znode under which proxies announce themselves', znodePath, { default: '/proxies' }),
  timeoutMs: flag('--timeout-ms <ms>', 'give up (exit 2) when ZooKeeper does not answer within this time', millis(100, 600_000), { default: 5000 })
}

const status = defineCommand({
  name: 'status',
  summary: 'show the targets, counts and proxies registered in ZooKeeper',
  flags: statusFlags,
  build: (v) => common(v)
})

const purgeFlags = {
  ...zkFlags,
  host: flag('--host <host>', 'purge only responses for this Host (any port); default: every host', text),
  prefix: flag('--prefix <path>', 'purge only responses whose request-target starts with this, e.g. /blog/', text),
  purgePath: flag('--purge-path <path>', 'znode under which fleet-wide cache purges are published', znodePath, { default: '/purges' }),
  timeoutMs: flag('--timeout-ms <ms>', 'give up (exit 2) when ZooKeeper does not answer within this time', millis(100, 600_000), { default: 5000 })
}

const purge = defineCommand({
  name: 'purge',
  summary: 'drop cached responses on every proxy of the fleet (all, or by --host / --prefix)',
  flags: purgeFlags,
  build: (v) => {
    const problem = purgeFilterProblem({ ...(v.host === undefined ? {} : { host: v.host }), ...(v.prefix === undefined ? {} : { prefix: v.prefix }) })
    if (problem !== undefined) throw new InvalidArgumentError(problem)
    return common(v, 'proxies')
  }
})

/** Every subcommand, in the order `zkproxy help` lists them. */
export const commands = { proxy, replica, register, dev, status, purge } as const
export type CommandName = keyof typeof commands

// ---- the typed config objects (one per command), derived from the tables ----

export type CommonConfig = Readonly<ReturnType<typeof common<Values<typeof zkFlags>>>>
export type ProxyConfig = ReturnType<typeof proxy.fromParsed>
export type ReplicaConfig = ReturnType<typeof replica.fromParsed>
export type RegisterConfig = ReturnType<typeof register.fromParsed>
export type DevConfig = ReturnType<typeof dev.fromParsed>
export type StatusConfig = ReturnType<typeof status.fromParsed>
export type PurgeConfig = ReturnType<typeof purge.fromParsed>

// Entry points taking commander's parsed options (`cmd.opts()`), as the command runners do.
export const proxyConfig = proxy.fromParsed
export const replicaConfig = replica.fromParsed
export const registerConfig = register.fromParsed
export const devConfig = dev.fromParsed
export const statusConfig = status.fromParsed
export const purgeConfig = purge.fromParsed

/** Adds a command's flags to a commander command (`commandOptions.proxy(new Command('proxy'))`). */
export const commandOptions = {
  proxy: proxy.configure,
  replica: replica.configure,
  register: register.configure,
  dev: dev.configure,
  status: status.configure,
  purge: purge.configure
} as const satisfies Record<CommandName, unknown>
