// The security flags as parsed and validated by src/config.ts: pairs that must come together,
// values refused with one line naming the flag, and the start-up check of a digest password.
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { commandOptions, proxyConfig, replicaConfig } from '../../src/config.js'
import { digestId } from '../../src/zk/index.js'

function proxy (args: string[]): ReturnType<typeof proxyConfig> {
  const cmd = commandOptions.proxy(new Command('proxy').exitOverride().configureOutput({ writeErr: () => {} }))
  cmd.parse(args, { from: 'user' })
  return proxyConfig(cmd.opts())
}

function replica (args: string[]): ReturnType<typeof replicaConfig> {
  const cmd = commandOptions.replica(new Command('replica').exitOverride().configureOutput({ writeErr: () => {} }))
  cmd.parse(['--port', '0', ...args], { from: 'user' })
  return replicaConfig(cmd.opts())
}

const acl = ['--zk-acl-replicas', `digest:${digestId('replica:r')}`, '--zk-acl-proxies', `digest:${digestId('proxy:p')}`]

describe('security flags', () => {
  it('defaults: open ACLs, private and loopback targets, no trusted peer, no TLS', () => {
    const c = proxy([])
    expect(c.zkAcl).toBeUndefined()
    expect(c.allowTargets).toEqual(['private', 'localhost'])
    expect(c.trustProxy).toEqual([])
    expect(c.tls).toBeUndefined()
    expect(c.upstreamCaFile).toBeUndefined()
  })

  it('ACL mode needs both identities and the role\'s own credential with the right password', () => {
    expect(() => proxy(acl.slice(0, 2))).toThrow(/--zk-acl-proxies is required with --zk-acl-replicas/)
    expect(() => proxy(acl.slice(2))).toThrow(/--zk-acl-replicas is required with --zk-acl-proxies/)
    expect(() => proxy(acl)).toThrow(/--zk-auth: no digest credential for user "proxy"/)
    expect(() => proxy([...acl, '--zk-auth', 'digest:proxy:wrong'])).toThrow(/wrong password for digest user "proxy"/)
    expect(proxy([...acl, '--zk-auth', 'digest:proxy:p']).zkAcl?.proxies.id).toBe(digestId('proxy:p'))
    expect(() => replica([...acl, '--zk-auth', 'digest:proxy:p'])).toThrow(/no digest credential for user "replica"/)
    expect(replica([...acl, '--zk-auth', 'digest:replica:r']).zkAcl?.replicas.scheme).toBe('digest')
  })

  it('--tls-cert and --tls-key come together', () => {
    expect(() => proxy(['--tls-cert', 'a.pem'])).toThrow(/--tls-key is required/)
    expect(() => proxy(['--tls-key', 'a.key'])).toThrow(/--tls-cert is required/)
    expect(proxy(['--tls-cert', 'a.pem', '--tls-key', 'a.key']).tls).toEqual({ certFile: 'a.pem', keyFile: 'a.key' })
  })

  it('bad lists are refused with the reason', () => {
    expect(() => proxy(['--allow-targets', '10.0.0.0/40'])).toThrow(/prefix length/)
    expect(() => proxy(['--trust-proxy', 'proxy.example'])).toThrow(/not an IP address/)
    expect(proxy(['--allow-targets', ' 10.0.0.0/8 , *.internal ']).allowTargets).toEqual(['10.0.0.0/8', '*.internal'])
  })
})
