// Versioned read-modify-write: ZooKeeper's setData with the version we read is a
// compare-and-set; on BadVersion another writer got in between, so re-read and re-apply.
import { BadVersionError, rc } from './errors.js'
import type { Stat } from './native.js'
import type { ZkSession } from './session.js'

export interface CasResult {
  readonly stat: Stat
  /** The data that was written. */
  readonly written: Buffer
  /** How many BadVersion conflicts were retried (a metric: zkproxy_count_cas_conflicts_total). */
  readonly conflicts: number
}

/**
 * Applies `update` to the node's current data until the write wins. `update` returns the new
 * data, or undefined to write nothing (then the result is undefined). NoNode propagates.
 */
export async function updateWithRetry (
  session: ZkSession,
  path: string,
  update: (data: Buffer, stat: Stat) => Buffer | undefined,
  maxAttempts = 50
): Promise<CasResult | undefined> {
  let conflicts = 0
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const current = await session.get(path)
    const next = update(current.data, current.stat)
    if (next === undefined) return undefined
    try {
      const stat = await session.set(path, next, current.stat.version)
      return { stat, written: next, conflicts }
    } catch (err) {
      if ((err as { code?: string }).code !== 'ZKPROXY_ERR_ZK_BAD_VERSION') throw err
      conflicts++
      // Writers that collide tend to re-read and collide again in lockstep; a short random
      // pause (growing with each conflict, at most ~64 ms) lets one of them win.
      await new Promise(resolve => setTimeout(resolve, Math.random() * Math.min(64, 2 ** conflicts)))
    }
  }
  throw new BadVersionError('ZKPROXY_ERR_ZK_BAD_VERSION', rc.BADVERSION, `set after ${maxAttempts} conflicts`, path)
}
