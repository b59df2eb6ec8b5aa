// The proxy's side of the target ACLs (docs/security.md "The create → setAcl window"): a
// target znode is admitted only once its ACL is the one replicas set. The `zookeeper` client
// creates every node with the open ACL and the replica sets the real one a round trip later;
// until then anyone may rewrite the node (its url, say), so a proxy that routed to it at once
// could be sent anywhere. ZooKeeper fires no watch on an ACL change, so the ACL is read when a
// target generation first appears and polled (with backoff) until it is right or the node goes.
import type { Logger } from 'pino'
import { aclEquals, formatAcl, worldMay, Perm, type AclEntry, type ZkSession } from '../zk/index.js'
import type { Admission, TargetInfo } from './target-set.js'

export interface TargetAclGateOptions {
  readonly session: ZkSession
  readonly targetsPath: string
  /** The ACL a target znode must carry (nodeAcls().target). */
  readonly expected: AclEntry[]
  readonly logger: Logger
  /** An admission changed: the TargetSet should ask again (TargetSet.refresh). */
  readonly onChange: () => void
  /** How long an open ACL counts as "being set" before it is a rejection. */
  readonly openGraceMs?: number
}

type Status = 'checking' | 'ok' | 'open' | 'wrong'

interface Entry {
  readonly generation: string
  readonly since: number
  status: Status
  acl: string
  delayMs: number
  timer: NodeJS.Timeout | undefined
  /** What check() last answered: a probe that would answer differently asks for a refresh. */
  told: Admission
}

const FIRST_RETRY_MS = 25
const MAX_RETRY_MS = 2000
const DEFAULT_OPEN_GRACE_MS = 2000

export class TargetAclGate {
  readonly #opts: TargetAclGateOptions
  readonly #entries = new Map<string, Entry>()
  #closed = false

  constructor (opts: TargetAclGateOptions) {
    this.#opts = opts
  }

  /** TargetSet's `admit`: synchronous, from what was last read; starts a read when needed. */
  check (t: TargetInfo): Admission {
    let e = this.#entries.get(t.name)
    if (e === undefined || e.generation !== t.generation) {
      if (e !== undefined) clearTimeout(e.timer)
      e = { generation: t.generation, since: Date.now(), status: 'checking', acl: '', delayMs: FIRST_RETRY_MS, timer: undefined, told: undefined }
      this.#entries.set(t.name, e)
      void this.#probe(t.name, e)
    }
    e.told = this.#admission(e)
    return e.told
  }

  #admission (e: Entry): Admission {
    switch (e.status) {
      case 'ok': return undefined
      case 'checking': return { wait: 'reading its ACL' }
      case 'open':
        if (Date.now() - e.since < (this.#opts.openGraceMs ?? DEFAULT_OPEN_GRACE_MS)) return { wait: 'its ACL is still open (being set by its replica)' }
        return `its ACL (${e.acl}) lets anyone rewrite it: registered without --zk-acl-*, or not by a replica`
      case 'wrong': return `its ACL (${e.acl}) is not the replicas' (${formatAcl(this.#opts.expected)})`
    }
  }

  /** Forgets targets that are gone (called with every snapshot's names). */
  prune (present: ReadonlySet<string>): void {
    for (const [name, e] of this.#entries) {
      if (present.has(name)) continue
      clearTimeout(e.timer)
      this.#entries.delete(name)
    }
  }

  close (): void {
    this.#closed = true
    for (const e of this.#entries.values()) clearTimeout(e.timer)
    this.#entries.clear()
  }

  async #probe (name: string, e: Entry): Promise<void> {
    if (this.#closed || this.#entries.get(name) !== e) return
    try {
      const { acl, stat } = await this.#opts.session.getAcl(`${this.#opts.targetsPath}/${name}`)
      // Another generation of the node: its own entry will be made when the TargetSet sees it.
      if (String(stat.czxid) !== e.generation) return
      // A proxy has no ADMIN on targets, so ZooKeeper shows it digest ids as `user:x`:
      // compare the same masked way (user names and perms).
      if (aclEquals(acl, this.#opts.expected, { maskDigest: true })) {
        e.status = 'ok'
      } else {
        e.status = worldMay(acl, Perm.WRITE | Perm.ADMIN) ? 'open' : 'wrong'
        e.acl = formatAcl(acl)
      }
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'ZKPROXY_ERR_ZK_NO_NODE') return
      this.#opts.logger.debug({ err, target: name }, 'reading a target ACL failed; retrying')
    }
    if (this.#closed || this.#entries.get(name) !== e) return
    if (e.status !== 'ok') {
      // Until it is right: the replica sets it a round trip after creating the node.
      e.timer = setTimeout(() => { void this.#probe(name, e) }, e.delayMs)
      e.timer.unref()
      e.delayMs = Math.min(e.delayMs * 2, MAX_RETRY_MS)
    }
    // Also catches an open ACL outliving its grace period between two probes.
    if (!sameAdmission(e.told, this.#admission(e))) this.#opts.onChange()
  }
}

function sameAdmission (a: Admission, b: Admission): boolean {
  if (typeof a === 'object' && typeof b === 'object') return a.wait === b.wait
  return a === b
}
