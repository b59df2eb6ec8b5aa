// The content revision watcher (docs/cache.md, invalidation): proxies keep a re-armed
// data watch on /cacheAge and drop their caches when the revision published there changes to
// a different value. The watch layer (src/zk/watch.ts) is level-triggered: it re-reads after
// every fire and on every new session, and delivers a value only when the znode's version
// changed, so twenty rapid writes may arrive as fewer deliveries but the last one is always
// seen, and a change made while disconnected or across a session expiry is read on reconnect.
import type { Logger } from 'pino'
import { watchData, type DataValue, type ZkSession } from '../zk/index.js'
import { decodeRevision } from './codec.js'

export interface RevisionWatch {
  /** The last revision seen (undefined until one was read). */
  readonly revision: string | undefined
  close (): void
}

/**
 * Calls `onChange(revision, previous)` when the decoded revision becomes a different value
 * than the last one seen. Not for the first read: a proxy that starts has an empty cache, so
 * there is nothing to drop. Not when the same revision is written again: a replica restart
 * without new content must not cost every proxy its cache.
 *
 * A missing, empty or unreadable /cacheAge is "no revision published", not a revision: it
 * neither calls `onChange` nor forgets the last revision, so a delete followed by a re-create
 * with the same value keeps the cache, and a garbage write cannot flush every proxy
 * (`decodeRevision` maps all of these to undefined). `previous` is undefined only when the
 * first read found no revision; `revision` is always defined when `onChange` is called.
 */
export function watchRevision (
  session: ZkSession,
  path: string,
  logger: Logger,
  onChange: (revision: string | undefined, previous: string | undefined) => void
): RevisionWatch {
  let read = false
  let last: string | undefined

  const deliver = (value: DataValue | null): void => {
    const revision = decodeRevision(value === null ? null : value.data)
    const version = value?.stat.version
    if (!read) {
      read = true
      last = revision
      logger.info({ path, revision, version }, 'content revision read')
      return
    }
    if (revision === undefined) {
      if (value === null) logger.info({ path, revision: last }, 'content revision node is gone; keeping the cache')
      else logger.warn({ path, version, bytes: value.data.length, revision: last }, 'content revision unreadable; keeping the cache')
      return
    }
    if (revision === last) {
      // Written again with the same value (a replica restarted): nothing to drop.
      logger.debug({ path, revision, version }, 'content revision rewritten unchanged')
      return
    }
    const previous = last
    last = revision
    logger.info({ path, revision, previous, version }, 'content revision changed')
    try {
      onChange(revision, previous)
    } catch (err) {
      // The watch must outlive a failing consumer; the revision is recorded either way.
      logger.error({ err, path, revision }, 'content revision listener failed')
    }
  }

  const watch = watchData(session, path, deliver, logger)
  return {
    get revision () { return last },
    close () { watch.close() }
  }
}
