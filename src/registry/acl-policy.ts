// Who may do what in ZooKeeper (docs/security.md "ACLs"): two role identities, the replicas'
// and the proxies', and one ACL per znode of the data model. Only the replicas may create
// targets (CREATE on the targets path) and write the content revision; proxies may write the
// counts in target znodes; everyone else may read. Each process secures the nodes it creates:
// the `zookeeper` client creates with the open ACL, so the ACL is set right after (see
// EphemeralNode for the window on a target znode, and securePath below for parents).
import { posix } from 'node:path'
import type { Logger } from 'pino'
import { hasCode } from '../errors.js'
import { aclEquals, entry, formatAcl, formatAclId, worldMay, Perm, type AclEntry, type AclId, type ZkSession } from '../zk/index.js'

export interface RoleIdentities {
  /** `--zk-acl-replicas`: may create targets and write /cacheAge. */
  readonly replicas: AclId
  /** `--zk-acl-proxies`: may write target counts and announce proxies. */
  readonly proxies: AclId
}

export interface NodeAcls {
  /** The targets path: only replicas create (and delete) children. */
  readonly targets: AclEntry[]
  /** One target znode: the replica owns it, proxies write its count. */
  readonly target: AclEntry[]
  /** The content revision: written by replicas only. */
  readonly cacheAge: AclEntry[]
  /** The proxies path and each proxy's announcement: proxies only. */
  readonly proxies: AclEntry[]
}

const R = Perm.READ
const RW = Perm.READ | Perm.WRITE

export function nodeAcls (ids: RoleIdentities): NodeAcls {
  const everyoneReads = entry('anyone', R)
  return {
    targets: [everyoneReads, entry(ids.replicas, Perm.ALL)],
    target: [everyoneReads, entry(ids.replicas, Perm.ALL), entry(ids.proxies, RW)],
    cacheAge: [everyoneReads, entry(ids.replicas, Perm.ALL)],
    proxies: [everyoneReads, entry(ids.proxies, Perm.ALL)]
  }
}

export interface SecurePathOptions {
  /**
   * Delete the children that were there when the ACL had to be changed. Until then anyone
   * could create children (a rogue target, say, with a look-alike ACL), and a node does not
   * tell who created it; our own come back at once (EphemeralNode re-creates on deletion).
   */
  readonly purgeChildren?: boolean
  readonly logger: Logger
}

/**
 * Makes sure `path` exists and carries `acl`. Only a process holding an identity with ADMIN
 * in the current ACL (or anyone, while it is still open) can fix a wrong one: otherwise this
 * fails with ZKPROXY_ERR_ZK_NO_AUTH, and the message names what to check.
 */
export async function securePath (session: ZkSession, path: string, acl: AclEntry[], opts: SecurePathOptions): Promise<void> {
  await session.mkdirp(path)
  for (let attempt = 0; ; attempt++) {
    const current = await session.getAcl(path)
    if (aclEquals(current.acl, acl)) return
    try {
      await session.setAcl(path, current.stat.aversion, acl)
    } catch (err) {
      // Changed in between (someone else securing it too): read again, a few times.
      if (hasCode(err, 'ZKPROXY_ERR_ZK_BAD_VERSION') && attempt < 5) continue
      if (hasCode(err, 'ZKPROXY_ERR_ZK_NO_AUTH')) {
        opts.logger.error({ path, acl: formatAcl(current.acl), wanted: formatAcl(acl) },
          `cannot set the ACL of ${path}: its ACL does not give us ADMIN; do --zk-auth and --zk-acl-* match the other processes'?`)
      }
      throw err
    }
    opts.logger.info({ path, from: formatAcl(current.acl), to: formatAcl(acl) }, 'znode ACL set')
    if (opts.purgeChildren === true) await purgeChildren(session, path, opts.logger)
    await warnIfDeletable(session, path, opts.logger)
    return
  }
}

async function purgeChildren (session: ZkSession, path: string, log: Logger): Promise<void> {
  for (const name of await session.children(path)) {
    try {
      await session.delete(`${path}/${name}`, -1)
      log.warn({ path: `${path}/${name}` }, 'deleted a node created before its parent\'s ACL was set (its owner re-creates it if it is ours)')
    } catch (err) {
      if (!hasCode(err, 'ZKPROXY_ERR_ZK_NO_NODE')) throw err
    }
  }
}

/**
 * An ACL on a node does not stop anyone who may DELETE in its parent from removing it when it
 * is empty and creating it again with an open ACL. The root (`/`) lets everyone do that unless
 * the operator restricted it: say so once, when we first secure the path.
 */
async function warnIfDeletable (session: ZkSession, path: string, log: Logger): Promise<void> {
  const parent = posix.dirname(path)
  try {
    const { acl } = await session.getAcl(parent)
    if (worldMay(acl, Perm.DELETE)) {
      log.warn({ path, parent, parentAcl: formatAcl(acl) }, `anyone may delete ${path} when it is empty and re-create it with an open ACL: restrict the ACL of ${parent} (docs/security.md)`)
    }
  } catch (err) {
    // Cannot read it: then we cannot judge it either; securing the node itself still stands.
    log.debug({ err, parent }, 'could not read the parent ACL')
  }
}

/** For log lines and errors: `digest:replica:…` without the full hash. */
export function describeIdentity (id: AclId): string {
  return formatAclId(id).replace(/^(digest:[^:]+:).+$/, '$1…')
}
