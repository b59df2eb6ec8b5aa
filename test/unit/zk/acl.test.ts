// ACL values (src/zk/acl.ts) and the node ACLs of ACL mode (src/registry/acl-policy.ts).
import { describe, expect, it } from 'vitest'
import { nodeAcls } from '../../../src/registry/acl-policy.js'
import { aclEquals, digestId, formatAcl, parseAclId, Perm, worldMay } from '../../../src/zk/index.js'

describe('digest ids', () => {
  it('are user:base64(sha1("user:password")), as ZooKeeper derives them', () => {
    // `printf %s 'replica:secret' | openssl dgst -binary -sha1 | openssl base64`
    expect(digestId('replica:secret')).toBe('replica:eVwEEE5dob2y8banvUeH9S6GMac=')
  })

  it('parse from --zk-acl-* values, refusing a password given instead of its hash', () => {
    expect(parseAclId('digest:replica:eVwEEE5dob2y8banvUeH9S6GMac=')).toEqual({ scheme: 'digest', id: 'replica:eVwEEE5dob2y8banvUeH9S6GMac=' })
    expect(parseAclId('sasl:replica@EXAMPLE.COM')).toEqual({ scheme: 'sasl', id: 'replica@EXAMPLE.COM' })
    expect(parseAclId('digest:replica:secret')).toMatch(/HASH/)
    expect(parseAclId('world:anyone')).toMatch(/everyone/)
    expect(parseAclId('nocolon')).toMatch(/scheme:id/)
  })
})

describe('comparing ACLs', () => {
  const R = { scheme: 'digest', auth: digestId('replica:a'), perm: Perm.ALL }
  const world = { scheme: 'world', auth: 'anyone', perm: Perm.READ }

  it('ignores order and merges duplicate identities', () => {
    expect(aclEquals([R, world], [world, R])).toBe(true)
    expect(aclEquals([world, { ...world, perm: Perm.WRITE }, R], [R, { ...world, perm: Perm.READ | Perm.WRITE }])).toBe(true)
    expect(aclEquals([R], [R, world])).toBe(false)
  })

  it('masked, compares digest users only (what a client without ADMIN is shown)', () => {
    const shown = { scheme: 'digest', auth: 'replica:x', perm: Perm.ALL }
    expect(aclEquals([world, shown], [world, R])).toBe(false)
    expect(aclEquals([world, shown], [world, R], { maskDigest: true })).toBe(true)
    expect(aclEquals([world, { ...shown, auth: 'other:x' }], [world, R], { maskDigest: true })).toBe(false)
  })

  it('formats like zkCli, with digest hashes shortened', () => {
    expect(formatAcl([R, world])).toMatch(/^digest:replica:.{6}…:cdrwa,world:anyone:r$/)
    expect(worldMay([world], Perm.WRITE)).toBe(false)
    expect(worldMay([{ ...world, perm: Perm.ALL }], Perm.WRITE)).toBe(true)
  })
})

describe('node ACLs in ACL mode', () => {
  const acls = nodeAcls({ replicas: { scheme: 'digest', id: digestId('replica:a') }, proxies: { scheme: 'digest', id: digestId('proxy:b') } })
  const f = (acl: typeof acls.target): string => formatAcl(acl).replace(/:[^:,]{6}…/g, ':…')

  it('only replicas create targets and write /cacheAge; proxies write counts; everyone reads', () => {
    expect(f(acls.targets)).toBe('digest:replica:…:cdrwa,world:anyone:r')
    expect(f(acls.target)).toBe('digest:proxy:…:rw,digest:replica:…:cdrwa,world:anyone:r')
    expect(f(acls.cacheAge)).toBe('digest:replica:…:cdrwa,world:anyone:r')
    expect(f(acls.proxies)).toBe('digest:proxy:…:cdrwa,world:anyone:r')
  })
})
