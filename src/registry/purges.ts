// Fleet-wide cache purges through ZooKeeper: `zkproxy purge` (or a proxy's admin API) creates a
// persistent sequential node under the purge root (`/purges/purge-0000000042`) holding what to
// purge; every proxy watches the root's children and applies each purge once, in sequence order,
// remembering the last sequence it applied. A proxy that was disconnected reads the children on
// reconnect and applies the ones it missed. Old nodes are pruned by the writers, keeping the
// newest PURGES_KEPT: before deleting, a writer raises the root's data (the "floor": the highest
// sequence deleted), so a proxy whose last applied sequence is below the floor knows it may have
// missed a purge it can no longer read, and clears everything instead.
import pino, { type Logger } from 'pino'
import { createError, hasCode } from '../errors.js'
import { purgeFilterProblem, type PurgeFilter } from '../purge-filter.js'
import { CreateMode, Perm, entry, isRetryable, updateWithRetry, watchChildren, type AclEntry, type Watch, type ZkSession } from '../zk/index.js'
import { securePath } from './acl-policy.js'
import type { RoleIdentities } from './acl-policy.js'

const PREFIX = 'purge-'
/** Purge nodes kept under the root; older ones are deleted by the next writer. */
export const PURGES_KEPT = 100
/** Largest purge node accepted: a filter is a host and a prefix, nothing more. */
const MAX_PURGE_BYTES = 8192
const SILENT = pino({ enabled: false })

/** What a proxy applies: a filter, or everything (`all`: no filter, or a purge it cannot read). */
export interface PurgeEvent {
  readonly sequence: number
  readonly filter: PurgeFilter
  /** Why the filter is empty when it was not asked for: a purge missed or unreadable. */
  readonly widened?: 'missed' | 'unreadable'
}

export function encodePurge (filter: PurgeFilter, at = new Date()): Buffer {
  const problem = purgeFilterProblem(filter)
  if (problem !== undefined) throw createError('ZKPROXY_ERR_CONFIG_INVALID', `purge: ${problem}`)
  return Buffer.from(JSON.stringify({
    ...(filter.host === undefined ? {} : { host: filter.host.toLowerCase() }),
    ...(filter.prefix === undefined ? {} : { prefix: filter.prefix }),
    at: at.toISOString()
  }))
}

/** The filter in a purge node, or undefined when it is not one (then a proxy purges everything). */
export function decodePurge (data: Buffer): PurgeFilter | undefined {
  if (data.length > MAX_PURGE_BYTES) return undefined
  let json: unknown
  try {
    json = JSON.parse(data.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined
  const { host, prefix } = json as Record<string, unknown>
  if ((host !== undefined && typeof host !== 'string') || (prefix !== undefined && typeof prefix !== 'string')) return undefined
  const filter: PurgeFilter = { ...(host === undefined ? {} : { host }), ...(prefix === undefined ? {} : { prefix }) }
  return purgeFilterProblem(filter) === undefined ? filter : undefined
}

/** `purge-0000000042` → 42; undefined for any other name. */
export function purgeSequence (name: string): number | undefined {
  if (!name.startsWith(PREFIX)) return undefined
  const digits = name.slice(PREFIX.length)
  return /^[0-9]{1,10}$/.test(digits) ? Number(digits) : undefined
}

function floorOf (data: Buffer): number {
  const text = data.toString('utf8').trim()
  return /^[0-9]{1,10}$/.test(text) ? Number(text) : -1
}

/** ACL mode: everyone reads the purges, only the proxies' identity publishes and prunes them. */
export function purgeAcl (ids: RoleIdentities): AclEntry[] {
  return [entry('anyone', Perm.READ), entry(ids.proxies, Perm.ALL)]
}

export interface PublishOptions {
  readonly logger?: Logger | undefined
  /** Purge nodes kept (default PURGES_KEPT). */
  readonly kept?: number
  /** ACL mode (--zk-acl-*): the root is locked to purgeAcl() before the write. */
  readonly acl?: AclEntry[] | undefined
}

/** Publishes a purge for the fleet; returns its sequence. Prunes old purge nodes after. */
export async function publishPurge (session: ZkSession, root: string, filter: PurgeFilter, opts: PublishOptions = {}): Promise<number> {
  const { logger, kept = PURGES_KEPT } = opts
  const data = encodePurge(filter)
  if (opts.acl !== undefined) await securePath(session, root, opts.acl, { logger: logger ?? SILENT })
  else await session.mkdirp(root)
  const path = await session.create(`${root}/${PREFIX}`, data, CreateMode.PERSISTENT_SEQUENTIAL)
  const sequence = purgeSequence(path.slice(path.lastIndexOf('/') + 1))
  if (sequence === undefined) throw createError('ZKPROXY_ERR_ZK_BAD_ARGUMENTS', `purge node created as ${path}`)
  try {
    await prunePurges(session, root, kept)
  } catch (err) {
    // The purge is out; pruning is housekeeping the next writer does again.
    logger?.warn({ err, root }, 'could not prune old purge nodes')
  }
  return sequence
}

/** Deletes all but the newest `kept` purge nodes, raising the floor first. */
export async function prunePurges (session: ZkSession, root: string, kept = PURGES_KEPT): Promise<number> {
  const names = (await session.children(root))
    .map((name) => ({ name, seq: purgeSequence(name) }))
    .filter((c): c is { name: string, seq: number } => c.seq !== undefined)
    .sort((a, b) => a.seq - b.seq)
  const old = names.slice(0, Math.max(0, names.length - kept))
  if (old.length === 0) return 0
  const top = old[old.length - 1]!.seq
  await updateWithRetry(session, root, (data) => floorOf(data) >= top ? undefined : Buffer.from(String(top)))
  for (const { name } of old) {
    try {
      await session.delete(`${root}/${name}`, -1)
    } catch (err) {
      if (!hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
    }
  }
  return old.length
}

export interface PurgeWatch {
  /** The last sequence applied (or known at start), -1 before any. */
  readonly applied: number
  close (): void
}

/**
 * Calls `apply` once for each purge published after the first read, in sequence order. At
 * start, existing purges are only noted: a starting proxy has nothing stored.
 */
export function watchPurges (session: ZkSession, root: string, logger: Logger, apply: (event: PurgeEvent) => void): PurgeWatch {
  let applied: number | undefined
  let latest: string[] | null | undefined
  let running = false
  let again = false
  let closed = false

  const pass = async (children: string[] | null): Promise<void> => {
    const seqs = (children ?? []).map((n) => ({ name: n, seq: purgeSequence(n) }))
      .filter((c): c is { name: string, seq: number } => c.seq !== undefined)
      .sort((a, b) => a.seq - b.seq)
    let floor = -1
    if (children !== null) {
      try {
        floor = floorOf((await session.get(root)).data)
      } catch (err) {
        if (!hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
      }
    }
    const top = Math.max(floor, seqs.at(-1)?.seq ?? -1)
    if (applied === undefined) {
      applied = top
      logger.info({ path: root, sequence: applied }, 'purges read')
      return
    }
    if (floor > applied) {
      // Purges we never applied were pruned meanwhile: we cannot know what they named.
      const sequence = floor
      applied = floor
      deliver({ sequence, filter: {}, widened: 'missed' })
    }
    for (const { name, seq } of seqs) {
      if (seq <= applied) continue
      let filter: PurgeFilter | undefined
      let widened: PurgeEvent['widened']
      try {
        filter = decodePurge((await session.get(`${root}/${name}`)).data)
        if (filter === undefined) widened = 'unreadable'
      } catch (err) {
        if (!hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
        // Pruned between the listing and the read: what it named is gone with it.
        widened = 'missed'
      }
      applied = seq
      deliver({ sequence: seq, filter: filter ?? {}, ...(widened === undefined ? {} : { widened }) })
    }
  }

  const deliver = (event: PurgeEvent): void => {
    logger.info({ path: root, purge: event }, event.widened === undefined ? 'purge applied' : 'purge applied to everything')
    try {
      apply(event)
    } catch (err) {
      logger.error({ err, path: root }, 'purge listener failed')
    }
  }

  // One pass at a time, over the latest listing; a failed pass (connection trouble) is run
  // again on the next connection, from the sequence it reached.
  const run = async (): Promise<void> => {
    if (running) { again = true; return }
    running = true
    try {
      do {
        again = false
        if (latest === undefined || closed) return
        try {
          await pass(latest)
        } catch (err) {
          if (!isRetryable(err)) logger.warn({ err, path: root }, 'cannot read purges; trying again on the next connection')
          return
        }
      } while (again)
    } finally {
      running = false
    }
  }

  const onConnected = (): void => { void run() }
  session.on('connected', onConnected)
  const watch: Watch = watchChildren(session, root, (children) => {
    latest = children
    void run()
  }, logger)
  return {
    get applied () { return applied ?? -1 },
    close () {
      closed = true
      session.off('connected', onConnected)
      watch.close()
    }
  }
}
