// The security flags' values (docs/security.md): ACL identities, the address and trust lists,
// TLS file pairs, and the start-up check of a digest password. Parsers for src/config.ts, which
// stays the only module that reads argv and the environment; each throws commander's
// InvalidArgumentError so the one-line, exit-2 error names the flag.
import { InvalidArgumentError } from 'commander'
import type { CommonConfig, ProxyConfig } from './config.js'
import { allowListProblem, IpSet } from './registry/address-policy.js'
import type { RoleIdentities } from './registry/acl-policy.js'
import { digestId, digestUser, parseAclId, type AclId } from './zk/index.js'

type Raw = Record<string, unknown>

export function parseRoleId (v: string): AclId {
  const id = parseAclId(v)
  if (typeof id === 'string') throw new InvalidArgumentError(id)
  return id
}

/** A comma-separated list, entries trimmed, empty ones dropped. */
function parseList (v: string): string[] {
  return v.split(',').map(e => e.trim()).filter(e => e !== '')
}

export function parseAllowTargets (v: string): string[] {
  const list = parseList(v)
  const problem = allowListProblem(list)
  if (problem !== undefined) throw new InvalidArgumentError(problem)
  return list
}

export function parseCidrs (v: string): string[] {
  const list = parseList(v)
  try { void new IpSet(list) } catch (err) { throw new InvalidArgumentError((err as Error).message) }
  return list
}

/**
 * Two flags that only make sense together: both values, or undefined when neither was given;
 * one without the other is a clear error naming both.
 */
function pair<T> (raw: Raw, a: [key: string, flag: string], b: [key: string, flag: string]): [T, T] | undefined {
  const first = raw[a[0]] as T | undefined
  const second = raw[b[0]] as T | undefined
  if (first === undefined && second === undefined) return undefined
  if (first === undefined) throw new InvalidArgumentError(`${a[1]} is required with ${b[1]}`)
  if (second === undefined) throw new InvalidArgumentError(`${b[1]} is required with ${a[1]}`)
  return [first, second]
}

export function zkAclFrom (raw: Raw): RoleIdentities | undefined {
  const both = pair<AclId>(raw, ['zkAclReplicas', '--zk-acl-replicas'], ['zkAclProxies', '--zk-acl-proxies'])
  return both === undefined ? undefined : { replicas: both[0], proxies: both[1] }
}

/**
 * In ACL mode a process must hold its role's identity. ZooKeeper takes any digest password
 * without complaint (a wrong one is just another identity, found out later as NOAUTH), so the
 * digest is compared here, at start, where a wrong password is one clear line.
 */
export function checkRoleCredential (c: CommonConfig, role: 'replicas' | 'proxies'): void {
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

export function tlsFrom (raw: Raw): ProxyConfig['tls'] {
  const both = pair<string>(raw, ['tlsCert', '--tls-cert'], ['tlsKey', '--tls-key'])
  return both === undefined ? undefined : { certFile: both[0], keyFile: both[1] }
}
