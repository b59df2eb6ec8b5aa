// ZooKeeper ACL values: identities (`scheme:id`), the digest scheme's id derivation, and
// comparing ACLs the way the server hands them back. Pure, no I/O.
import { createHash } from 'node:crypto'
import { Perm, type AclEntry } from './native.js'

/** One ZooKeeper identity, e.g. { scheme: 'digest', id: 'replica:Nc6A…=' }. */
export interface AclId {
  readonly scheme: string
  readonly id: string
}

/**
 * The id ZooKeeper's DigestAuthenticationProvider derives from `addauth digest user:password`:
 * `user:base64(sha1("user:password"))`. Computing it here lets a process tell, before it
 * connects, whether its password matches the identity an ACL names (a wrong digest password
 * is not an error to ZooKeeper: it silently becomes another identity).
 */
export function digestId (credential: string): string {
  const i = credential.indexOf(':')
  const user = i < 0 ? credential : credential.slice(0, i)
  return `${user}:${createHash('sha1').update(credential, 'utf8').digest('base64')}`
}

/** `scheme:id` (for digest: `digest:user:HASH`); the reason when it is not one. */
export function parseAclId (text: string): AclId | string {
  const s = text.trim()
  const i = s.indexOf(':')
  if (i <= 0 || i === s.length - 1) return `expected scheme:id (e.g. digest:replica:HASH), got "${text}"`
  const scheme = s.slice(0, i)
  const id = s.slice(i + 1)
  if (!/^[a-z0-9]+$/i.test(scheme)) return `bad ACL scheme "${scheme}"`
  if (scheme === 'world') return 'world:anyone cannot be a role identity (everyone would have it)'
  if (scheme === 'digest') {
    // The server refuses a digest id without exactly one ':' (INVALIDACL); a password given
    // by mistake instead of its hash would be accepted and match nobody, so say so now.
    const m = /^([^:]+):([A-Za-z0-9+/]{27}=)$/.exec(id)
    if (m === null) return `digest ids are user:HASH with HASH = base64(sha1("user:password")) (28 characters), got "${id.replace(/:.*/, ':…')}"`
  }
  return { scheme, id }
}

export function formatAclId (a: AclId): string { return `${a.scheme}:${a.id}` }

/** The user part of a digest id (`replica` in `replica:HASH`), else undefined. */
export function digestUser (a: AclId): string | undefined {
  return a.scheme === 'digest' ? a.id.slice(0, a.id.indexOf(':')) : undefined
}

/**
 * One entry per identity (perms OR-ed, as ZooKeeper would merge duplicates) in a fixed order,
 * so that two ACLs compare equal whatever the order they were written or read back in.
 */
export function normalizeAcl (acl: readonly AclEntry[], opts: { maskDigest?: boolean } = {}): AclEntry[] {
  const byId = new Map<string, AclEntry>()
  for (const a of acl) {
    // Without ADMIN on a node, ZooKeeper shows digest ids as `user:x`; masking our side the
    // same way compares what such a reader can compare: identities by user name, and perms.
    const auth = opts.maskDigest === true && a.scheme === 'digest' ? a.auth.replace(/:.*$/, ':x') : a.auth
    const key = `${a.scheme}:${auth}`
    const prev = byId.get(key)
    byId.set(key, { scheme: a.scheme, auth, perm: (prev?.perm ?? 0) | a.perm })
  }
  return [...byId.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([, e]) => e)
}

export function aclEquals (actual: readonly AclEntry[], expected: readonly AclEntry[], opts: { maskDigest?: boolean } = {}): boolean {
  const a = normalizeAcl(actual, opts)
  const b = normalizeAcl(expected, opts)
  return a.length === b.length && a.every((e, i) => e.scheme === b[i]!.scheme && e.auth === b[i]!.auth && e.perm === b[i]!.perm)
}

const PERM_LETTERS: Array<[number, string]> = [[Perm.CREATE, 'c'], [Perm.DELETE, 'd'], [Perm.READ, 'r'], [Perm.WRITE, 'w'], [Perm.ADMIN, 'a']]

/** `world:anyone:r,digest:replica:…:cdrwa` (zkCli's notation; digest hashes shortened). */
export function formatAcl (acl: readonly AclEntry[]): string {
  return normalizeAcl(acl).map(a => {
    const perms = PERM_LETTERS.filter(([bit]) => (a.perm & bit) !== 0).map(([, l]) => l).join('')
    const id = a.scheme === 'digest' ? a.auth.replace(/:(.{6}).+$/, ':$1…') : a.auth
    return `${a.scheme}:${id}:${perms}`
  }).join(',')
}

/** True when the ACL lets everyone (world:anyone) do any of `perms`. */
export function worldMay (acl: readonly AclEntry[], perms: number): boolean {
  return acl.some(a => a.scheme === 'world' && a.auth === 'anyone' && (a.perm & perms) !== 0)
}

export function entry (who: AclId | 'anyone', perm: number): AclEntry {
  return who === 'anyone' ? { scheme: 'world', auth: 'anyone', perm } : { scheme: who.scheme, auth: who.id, perm }
}
