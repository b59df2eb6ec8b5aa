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

export function zkAclFrom (raw: Raw): RoleIdentities | undefined {
  const replicas = raw['zkAclReplicas'] as AclId | undefined
  const proxies = raw['zkAclProxies'] as AclId | undefined
  if (replicas === undefined && proxies === undefined) return undefined
  if (replicas === undefined) throw new InvalidArgumentError('--zk-acl-replicas is required with --zk-acl-proxies')
  if (proxies === undefined) throw new InvalidArgumentError('--zk-acl-proxies is required with --zk-acl-replicas')
  return { replicas, proxies }
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
  const certFile = raw['tlsCert'] as string | undefined
  const keyFile = raw['tlsKey'] as string | undefined
  if (certFile === undefined && keyFile === undefined) return undefined
  if (certFile === undefined) throw new InvalidArgumentError('--tls-cert is required with --tls-key')
  if (keyFile === undefined) throw new InvalidArgumentError('--tls-key is required with --tls-cert')
  return { certFile, keyFile }
}
