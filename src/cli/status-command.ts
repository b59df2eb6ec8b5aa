// `zkproxy status`: one look at what ZooKeeper holds for this app — the targets with their
// counts, share of the traffic, health (which proxies have set each aside, from the summary
// every proxy keeps in its own announcement), routes and revisions, the pools those routes form,
// the content revision, and the proxies announced under --proxies-path — as an aligned table,
// or JSON with --json.
// Exit codes (for scripts and health checks): 0 at least one usable target is registered,
// 1 none is (malformed znodes do not count), 2 the question could not be asked (bad flag,
// ZooKeeper unreachable within --timeout-ms, no permission): main.ts prints that one line.
import { statusConfig, type StatusConfig } from '../config.js'
import { decodeRevision, decodeTarget } from '../registry/codec.js'
import { DEFAULT_POOL_KEY } from '../routes.js'
import { ZkSession } from '../zk/index.js'
import type { CliContext } from './lifecycle.js'
import { withDeadline } from './time.js'

export interface TargetRow {
  name: string
  url: string
  requests: number
  /** Fraction of all targets' requests, 0..1 (0 when nobody has served anything yet). */
  share: number
  revision: string | null
  startedAt: string | null
  ageMs: number | null
  /** Its routes in canonical form; empty: the default pool. */
  routes: string[]
  /** `--strip-prefix`: proxies remove the matched route's path prefix before forwarding. */
  stripPrefix: boolean
  /** `ok`, or `ejected` when some proxy holds it as failing, else `drained` when some drained it. */
  health: 'ok' | 'ejected' | 'drained'
  /** Proxies (ids) that set it aside after failures and have not seen it answer since. */
  ejectedBy: string[]
  /** Proxies (ids) on which an operator drained it. */
  drainedBy: string[]
}

/** One pool as every proxy builds it: a route (or the default pool) and the targets serving it. */
export interface PoolRow {
  /** The route's canonical form, or `(default)`. */
  route: string
  targets: string[]
}

export interface ProxyRow {
  id: string
  url: string | null
  admin: string | null
  pid: number | null
  startedAt: string | null
  ageMs: number | null
  /** Targets it holds as failing, and targets drained on it, from its summary (empty: none or an older proxy). */
  ejected: string[]
  drained: string[]
  /** When its current ZooKeeper connection began; null when its node does not say. */
  connectedSince: string | null
}

export interface StatusReport {
  zk: string
  targetsPath: string
  cacheAgePath: string
  proxiesPath: string
  /** The content revision in --cache-age-path; null when missing or unreadable. */
  revision: string | null
  totalRequests: number
  targets: TargetRow[]
  /** Each content revision live targets carry, with their names (targets without one: `null`). */
  revisions: Array<{ revision: string | null, targets: string[] }>
  /** The default pool first (when any target is in it), then by route. */
  pools: PoolRow[]
  /** Znodes under --targets-path that no proxy would route to, with the reason. */
  malformed: Array<{ name: string, reason: string }>
  proxies: ProxyRow[]
}

export async function run (raw: Record<string, unknown>, ctx: CliContext): Promise<void> {
  const cfg = statusConfig(raw)
  // The session layer logs every state change; on a one-shot read that is noise on stdout,
  // so it only speaks when asked for debug output.
  const level = cfg.logLevel === 'debug' || cfg.logLevel === 'trace' ? cfg.logLevel : 'silent'
  const session = new ZkSession({ connect: cfg.zk, sessionTimeoutMs: cfg.sessionTimeoutMs, logger: ctx.logger.child({}, { level }), auth: cfg.zkAuth, createChroot: false })
  let report: StatusReport
  try {
    session.start()
    // A new session is sync()ed before it reports connected, so the reads below are not a
    // lagging follower's view.
    await session.waitConnected(cfg.timeoutMs).catch((err: unknown) => {
      if ((err as { code?: string }).code === 'ZKPROXY_ERR_ZK_AUTH_FAILED') throw new Error(`--zk-auth: ZooKeeper refused the credentials at ${cfg.zk}`, { cause: err })
      throw new Error(`cannot reach ZooKeeper at ${cfg.zk} within ${cfg.timeoutMs} ms (is it running? check --zk / ZK_CONNECT)`, { cause: err })
    })
    report = await withDeadline(readStatus(session, cfg, Date.now()), cfg.timeoutMs, `reading from ZooKeeper at ${cfg.zk} took longer than ${cfg.timeoutMs} ms`)
  } finally {
    await session.close()
  }
  process.stdout.write(cfg.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report))
  // The only non-zero exit that is not an error: "nothing to route to" is what a check wants.
  if (report.targets.length === 0) process.exitCode = 1
}

export async function readStatus (session: ZkSession, cfg: StatusConfig, now: number): Promise<StatusReport> {
  const [targetNodes, proxyNodes, revisionData] = await Promise.all([
    readChildren(session, cfg.targetsPath),
    readChildren(session, cfg.proxiesPath),
    readData(session, cfg.cacheAgePath)
  ])
  const targets: TargetRow[] = []
  const malformed: StatusReport['malformed'] = []
  for (const { name, data } of targetNodes) {
    const decoded = decodeTarget(name, data)
    if (!decoded.ok) {
      malformed.push({ name, reason: decoded.reason })
      continue
    }
    const t = decoded.target
    targets.push({ name, url: t.url, requests: t.requests, share: 0, revision: t.revision ?? null, startedAt: t.startedAt ?? null, ageMs: ageOf(t.startedAt, now), routes: t.routes?.map(r => r.key) ?? [], stripPrefix: t.stripPrefix === true, health: 'ok', ejectedBy: [], drainedBy: [] })
  }
  const totalRequests = targets.reduce((sum, t) => sum + t.requests, 0)
  for (const t of targets) t.share = totalRequests === 0 ? 0 : t.requests / totalRequests
  const proxies = proxyNodes.map(({ name, data }) => proxyRow(name, data, now))
  for (const t of targets) {
    t.ejectedBy = proxies.filter(p => p.ejected.includes(t.name)).map(p => p.id)
    t.drainedBy = proxies.filter(p => p.drained.includes(t.name)).map(p => p.id)
    t.health = t.ejectedBy.length > 0 ? 'ejected' : t.drainedBy.length > 0 ? 'drained' : 'ok'
  }
  return {
    zk: cfg.zk,
    targetsPath: cfg.targetsPath,
    cacheAgePath: cfg.cacheAgePath,
    proxiesPath: cfg.proxiesPath,
    revision: decodeRevision(revisionData) ?? null,
    totalRequests,
    targets,
    revisions: revisionsOf(targets),
    pools: poolsOf(targets),
    malformed,
    proxies
  }
}

function revisionsOf (targets: readonly TargetRow[]): StatusReport['revisions'] {
  const by = new Map<string | null, string[]>()
  for (const t of targets) by.set(t.revision, [...(by.get(t.revision) ?? []), t.name])
  return [...by].map(([revision, names]) => ({ revision, targets: names }))
}

function poolsOf (targets: readonly TargetRow[]): PoolRow[] {
  const pools = new Map<string, string[]>()
  for (const t of targets) {
    for (const route of t.routes.length === 0 ? [DEFAULT_POOL_KEY] : t.routes) {
      const list = pools.get(route)
      if (list === undefined) pools.set(route, [t.name])
      else list.push(t.name)
    }
  }
  const keys = [...pools.keys()].filter(k => k !== DEFAULT_POOL_KEY).sort()
  if (pools.has(DEFAULT_POOL_KEY)) keys.unshift(DEFAULT_POOL_KEY)
  return keys.map(route => ({ route, targets: pools.get(route)! }))
}

/** Children with their data, sorted by name; a missing parent is an empty list. */
async function readChildren (session: ZkSession, path: string): Promise<Array<{ name: string, data: Buffer }>> {
  let names: string[]
  try {
    names = await session.children(path)
  } catch (err) {
    if (isNoNode(err)) return []
    throw err
  }
  const nodes = await Promise.all(names.sort().map(async (name) => {
    // An ephemeral child may go away between the listing and the read: it is just gone.
    const data = await readData(session, `${path}/${name}`)
    return data === null ? undefined : { name, data }
  }))
  return nodes.filter((n) => n !== undefined)
}

async function readData (session: ZkSession, path: string): Promise<Buffer | null> {
  try {
    return (await session.get(path)).data
  } catch (err) {
    if (isNoNode(err)) return null
    throw err
  }
}

function isNoNode (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ZKPROXY_ERR_ZK_NO_NODE'
}

/** `/proxies/<id>` is written by proxies as JSON; anything else is shown with empty fields. */
function proxyRow (id: string, data: Buffer, now: number): ProxyRow {
  let json: Record<string, unknown> = {}
  try {
    const parsed: unknown = JSON.parse(data.toString('utf8'))
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>
  } catch {}
  const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null)
  const startedAt = str(json['startedAt'])
  // Names only: a malformed list is shown as none rather than failing the whole report.
  const names = (v: unknown): string[] => (Array.isArray(v) ? v.filter((n): n is string => typeof n === 'string') : [])
  const zookeeper = json['zookeeper']
  return {
    id,
    url: str(json['url']),
    admin: str(json['admin']),
    pid: typeof json['pid'] === 'number' ? json['pid'] : null,
    startedAt,
    ageMs: ageOf(startedAt ?? undefined, now),
    ejected: names(json['ejected']),
    drained: names(json['drained']),
    connectedSince: typeof zookeeper === 'object' && zookeeper !== null ? str((zookeeper as Record<string, unknown>)['since']) : null
  }
}

function ageOf (iso: string | undefined, now: number): number | null {
  if (iso === undefined) return null
  const t = Date.parse(iso)
  return Number.isNaN(t) ? null : Math.max(0, now - t)
}

// ---- table output ----

export function formatReport (r: StatusReport): string {
  const out: string[] = []
  out.push(`ZooKeeper ${r.zk}   targets ${r.targetsPath}   revision ${r.revision ?? '(none)'} (${r.cacheAgePath})`, '')
  if (r.targets.length === 0) {
    out.push(`No target is registered under ${r.targetsPath}.`)
  } else {
    out.push(...table(['TARGET', 'URL', 'REQUESTS', 'SHARE', 'HEALTH', 'REVISION', 'UP', 'ROUTES'], r.targets.map((t) => [
      t.name, t.url, String(t.requests), `${(t.share * 100).toFixed(1)}%`, healthCell(t), t.revision ?? '-', formatAge(t.ageMs),
      t.routes.length === 0 ? DEFAULT_POOL_KEY : `${t.routes.join(',')}${t.stripPrefix ? ' (strip-prefix)' : ''}`
    ]), new Set([2, 3])))
    out.push(`${r.targets.length} target${r.targets.length === 1 ? '' : 's'}, ${r.totalRequests} requests counted`)
    // Two revisions live at once is a deploy in progress (or one that stopped half-way).
    if (r.revisions.length > 1) out.push(`revisions live: ${r.revisions.map(v => `${v.revision ?? '(none)'} (${v.targets.length})`).join(', ')}`)
    // Only worth a table once some target declares a route: otherwise it is one default pool.
    if (r.pools.some(p => p.route !== DEFAULT_POOL_KEY)) {
      out.push('', ...table(['ROUTE', 'TARGETS'], r.pools.map(p => [p.route, p.targets.join(', ')]), new Set()))
      if (!r.pools.some(p => p.route === DEFAULT_POOL_KEY)) out.push('No default pool: requests no route matches are answered 404 no_route.')
    }
  }
  if (r.malformed.length > 0) {
    out.push('', `Ignored by proxies (malformed) under ${r.targetsPath}:`)
    for (const m of r.malformed) out.push(`  ${m.name}: ${m.reason}`)
  }
  out.push('')
  if (r.proxies.length === 0) {
    out.push(`No proxy is announced under ${r.proxiesPath}.`)
  } else {
    out.push(...table(['PROXY', 'URL', 'ADMIN', 'PID', 'UP', 'EJECTED'], r.proxies.map((p) => [
      p.id, p.url ?? '-', p.admin ?? '-', p.pid === null ? '-' : String(p.pid), formatAge(p.ageMs), p.ejected.length === 0 ? '-' : p.ejected.join(',')
    ]), new Set([3])))
  }
  if (r.targets.some(t => t.health !== 'ok')) {
    out.push('', 'HEALTH is what the proxies saw: "ejected by" names proxies whose requests to the target failed and')
    out.push('that have not seen it answer since (each proxy publishes this at most every 5 s).')
  }
  return out.join('\n') + '\n'
}

function healthCell (t: TargetRow): string {
  if (t.ejectedBy.length > 0) return `ejected by ${t.ejectedBy.join(',')}`
  if (t.drainedBy.length > 0) return `drained on ${t.drainedBy.join(',')}`
  return 'ok'
}

/** Columns padded to their widest cell; numeric columns right-aligned so digits line up. */
function table (head: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => cells
    .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
    .join('  ')
    .trimEnd()
  return [line(head), ...rows.map(line)]
}

export function formatAge (ms: number | null): string {
  if (ms === null) return '-'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`
}
