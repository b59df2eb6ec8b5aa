// The target address policy as a table (docs/security.md "Target address policy"): which
// origins a proxy may send traffic to by default, with --allow-targets, and never.
import { describe, expect, it } from 'vitest'
import { AddressPolicy, allowListProblem, canonicalIp, DEFAULT_ALLOW_TARGETS, IpSet } from '../../../src/registry/address-policy.js'

const byDefault = new AddressPolicy({ allow: DEFAULT_ALLOW_TARGETS, self: [{ host: '127.0.0.1', port: 9000 }, { host: '127.0.0.1', port: 9901 }] })

describe('AddressPolicy, default (private, loopback, localhost)', () => {
  it.each([
    'http://10.0.0.5:4000', 'http://172.16.0.1', 'http://172.31.255.255:80', 'http://192.168.1.10:8080',
    'http://127.0.0.1:4000', 'http://127.1.2.3:4000', 'http://[::1]:4000', 'http://[fd12:3456::1]:4000',
    'https://10.0.0.5', 'http://localhost:4000', 'http://LOCALHOST:4000'
  ])('admits %s', (origin) => {
    expect(byDefault.check(origin)).toBeUndefined()
  })

  it.each([
    ['http://169.254.169.254', /never a target/],
    ['http://169.254.170.2', /never a target/],
    ['http://[fe80::1]', /never a target/],
    ['http://[fd00:ec2::254]', /never a target/],
    ['http://[::ffff:169.254.169.254]', /never a target/],
    ['http://[::ffff:a9fe:a9fe]', /never a target/],
    ['http://[64:ff9b::a9fe:a9fe]', /never a target/],
    ['http://0.0.0.0:4000', /never a target/],
    ['http://[::]:4000', /never a target/],
    ['http://224.0.0.1', /never a target/],
    ['http://8.8.8.8', /outside --allow-targets/],
    ['http://172.32.0.1', /outside --allow-targets/],
    ['http://100.64.0.1', /outside --allow-targets/],
    ['http://[2001:db8::1]', /outside --allow-targets/],
    ['http://example.com', /not in --allow-targets/],
    ['http://localhost.', /not in --allow-targets/],
    ['http://127.0.0.1:9901', /own listener/],
    ['http://localhost:9000', /own listener/],
    ['http://127.0.0.2:9000', /own listener/],
    ['ftp://10.0.0.5', /not http or https/],
    ['not a url', /not valid/]
  ])('refuses %s', (origin, reason) => {
    expect(byDefault.check(origin)).toMatch(reason)
  })
})

describe('AddressPolicy, --allow-targets', () => {
  it('replaces the default: CIDRs, names and *.suffix patterns', () => {
    const p = new AddressPolicy({ allow: ['10.1.0.0/16', 'api.internal', '*.svc.cluster.local'] })
    expect(p.check('http://10.1.2.3')).toBeUndefined()
    expect(p.check('http://10.2.0.1')).toMatch(/outside/)
    expect(p.check('http://127.0.0.1')).toMatch(/outside/)
    expect(p.check('http://api.internal:8080')).toBeUndefined()
    expect(p.check('http://web.ns.svc.cluster.local')).toBeUndefined()
    expect(p.check('http://svc.cluster.local.evil.example')).toMatch(/not in --allow-targets/)
    expect(p.check('http://localhost')).toMatch(/not in --allow-targets/)
  })

  it('"any" still never allows link-local, metadata, unspecified or multicast addresses', () => {
    const p = new AddressPolicy({ allow: ['any'] })
    expect(p.check('http://8.8.8.8')).toBeUndefined()
    expect(p.check('http://169.254.169.254')).toMatch(/never a target/)
    expect(p.check('http://[fd00:ec2::254]')).toMatch(/never a target/)
  })

  it.each([
    [[], /empty/],
    [['10.0.0.0/33'], /prefix length/],
    [['10.0.0.0/8/1'], /not an IP address/],
    [['exa mple'], /not an IP address/],
    [['*'], /not an IP address/]
  ])('rejects the list %j', (list, reason) => {
    expect(allowListProblem(list)).toMatch(reason)
    expect(() => new AddressPolicy({ allow: list })).toThrow(reason)
  })
})

describe('IpSet (--trust-proxy)', () => {
  it('matches IPv4, IPv6 and IPv4-mapped peers', () => {
    const s = new IpSet(['10.0.0.0/8', '::1', '192.168.1.7'])
    expect(s.has('10.2.3.4')).toBe(true)
    expect(s.has('::ffff:10.2.3.4')).toBe(true)
    expect(s.has('::1')).toBe(true)
    expect(s.has('192.168.1.7')).toBe(true)
    expect(s.has('192.168.1.8')).toBe(false)
    expect(s.has('127.0.0.1')).toBe(false)
    expect(s.has('')).toBe(false)
  })

  it('reads mapped and NAT64 addresses as the IPv4 they carry', () => {
    expect(canonicalIp('[::ffff:a9fe:a9fe]')).toEqual({ address: '169.254.169.254', family: 'ipv4' })
    expect(canonicalIp('64:ff9b::10.0.0.1')).toEqual({ address: '10.0.0.1', family: 'ipv4' })
    expect(canonicalIp('host.example')).toBeUndefined()
  })
})
