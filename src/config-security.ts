// The security flags' values (docs/security.md): ACL identities, the address and trust lists,
// TLS file pairs, and the start-up check of a digest password. Value types and checks for the
// flag tables of src/config.ts; each throws commander's InvalidArgumentError so the one-line,
// exit-2 error names the flag.
import { InvalidArgumentError } from 'commander'
import type { ValueType, ZkAuth } from './config-values.js'
import { allowListProblem, IpSet } from './registry/address-policy.js'
import type { RoleIdentities } from './registry/acl-policy.js'
import { digestId, digestUser, parseAclId, type AclId } from './zk/index.js'

export const roleId: ValueType<AclId> = {
  hint: '',
  parse: (v) => {
    const id = parseAclId(v)
    if (typeof id === 'string') throw new InvalidArgumentError(id)
    return id
  }
}

/** A comma-separated list, entries trimmed, empty ones dropped. */
function parseList (v: string): string[] {
  return v.split(',').map(e => e.trim()).filter(e => e !== '')
}

/** --allow-targets: judged as a whole list (an empty one is refused, not taken as "none"). */
export const allowTargets: ValueType<readonly string[]> = {
  hint: '',
  parse: (v) => {
    const list = parseList(v)
    const problem = allowListProblem(list)
    if (problem !== undefined) throw new InvalidArgumentError(problem)
    return list
  }
}

export const cidrs: ValueType<readonly string[]> = {
  hint: '',
  parse: (v) => {
    const list = parseList(v)
    try { void new IpSet(list) } catch (err) { throw new InvalidArgumentError((err as Error).message) }
    return list
  }
}

/**
 * Two flags that only make sense together: both values, or undefined when neither was given;
 * one without the other is a clear error naming both.
 */
function pair<T> (a: [value: T | undefined, flag: string], b: [value: T | undefined, flag: string]): [T, T] | undefined {
  if (a[0] === undefined && b[0] === undefined) return undefined
  if (a[0] === undefined) throw new InvalidArgumentError(`${a[1]} is required with ${b[1]}`)
  if (b[0] === undefined) throw new InvalidArgumentError(`${b[1]} is required with ${a[1]}`)
  return [a[0], b[0]]
}

/** ACL mode (both --zk-acl-* given), else undefined: nodes keep the open ACL. */
export function roleIdentities (replicas: AclId | undefined, proxies: AclId | undefined): RoleIdentities | undefined {
  const both = pair([replicas, '--zk-acl-replicas'], [proxies, '--zk-acl-proxies'])
  return both === undefined ? undefined : { replicas: both[0], proxies: both[1] }
}

export interface TlsFiles { readonly certFile: string, readonly keyFile: string }

export function tlsFiles (cert: string | undefined, key: string | undefined): TlsFiles | undefined {
  const both = pair([cert, '--tls-cert'], [key, '--tls-key'])
  return both === undefined ? undefined : { certFile: both[0], keyFile: both[1] }
}

/**
 * In ACL mode a process must hold its role's identity. ZooKeeper takes any digest password
 * without complaint (a wrong one is just another identity, found out later as NOAUTH), so the
 * digest is compared here, at start, where a wrong password is one clear line.
 */
export function checkRoleCredential (c: { readonly zkAcl: RoleIdentities | undefined, readonly zkAuth: readonly ZkAuth[] }, role: 'replicas' | 'proxies'): void {
  const id = c.zkAcl?.[role]
  if (id === undefined) return
  const flag = `--zk-acl-${role}`
  const user = digestUser(id)
  if (user === undefined) {
    if (c.zkAuth.length === 0) throw new InvalidArgumentError(`--zk-auth is required with ${flag}`)
    return // another scheme (sasl, x509, ip…): only ZooKeeper can judge it
  }
  const mine = c.zkAuth.filter(a => a.scheme === 'digest' && a.credential.split(':')[0] === user)
  if (mine.length === 0) throw new InvalidArgumentError(`--zk-auth: no digest credential for user "${user}" named in ${flag}`)
  if (!mine.some(a => digestId(a.credential) === id.id)) throw new InvalidArgumentError(`--zk-auth: wrong password for digest user "${user}" (its digest does not match ${flag})`)
}
