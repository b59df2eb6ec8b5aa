// Purge filters (docs/cache.md "Purge") and the purge node codec (registry/purges.ts).
import { describe, expect, it } from 'vitest'
import { purgeFilterProblem, purgeMatcher } from '../../src/purge-filter.js'
import { decodePurge, encodePurge, purgeSequence } from '../../src/registry/purges.js'

describe('purgeMatcher', () => {
  // Primary keys hold the Host lower-cased (key.ts).
  const keys = ['a.test/blog/1', 'a.test:9000/blog/2?x=1', 'a.test/x', 'b.test/blog/1', '[::1]:8080/blog/1', 'a.testing/blog/1']

  it('no filter: everything', () => {
    expect(keys.filter(purgeMatcher({}))).toEqual(keys)
  })

  it('by host: case-insensitive, any port, never a longer name', () => {
    expect(keys.filter(purgeMatcher({ host: 'A.Test' }))).toEqual(['a.test/blog/1', 'a.test:9000/blog/2?x=1', 'a.test/x'])
    expect(keys.filter(purgeMatcher({ host: '[::1]' }))).toEqual(['[::1]:8080/blog/1'])
  })

  it('by prefix of the request-target, and both', () => {
    expect(keys.filter(purgeMatcher({ prefix: '/blog/' }))).toEqual(['a.test/blog/1', 'a.test:9000/blog/2?x=1', 'b.test/blog/1', '[::1]:8080/blog/1', 'a.testing/blog/1'])
    expect(keys.filter(purgeMatcher({ prefix: '/blog/2?' }))).toEqual(['a.test:9000/blog/2?x=1'])
    expect(keys.filter(purgeMatcher({ host: 'b.test', prefix: '/blog' }))).toEqual(['b.test/blog/1'])
  })

  it('refuses a host with a port or a path, and a prefix without a leading slash', () => {
    expect(purgeFilterProblem({ host: 'a.test:80' })).toMatch(/host/)
    expect(purgeFilterProblem({ host: 'a.test/x' })).toMatch(/host/)
    expect(purgeFilterProblem({ prefix: 'blog' })).toMatch(/prefix/)
    expect(purgeFilterProblem({ prefix: '/a b' })).toMatch(/prefix/)
    expect(purgeFilterProblem({ host: 'a.test', prefix: '/' })).toBeUndefined()
  })
})

describe('purge nodes', () => {
  it('round-trips a filter, lower-casing the host', () => {
    expect(decodePurge(encodePurge({ host: 'A.test', prefix: '/x' }))).toEqual({ host: 'a.test', prefix: '/x' })
    expect(decodePurge(encodePurge({}))).toEqual({})
  })

  it('refuses to write a bad filter', () => {
    expect(() => encodePurge({ prefix: 'x' })).toThrow(expect.objectContaining({ code: 'ZKPROXY_ERR_CONFIG_INVALID' }))
  })

  it('reads anything else as unreadable (the proxy then purges everything)', () => {
    for (const bad of ['', 'null', '[]', '"x"', '{"host":1}', '{"prefix":"nope"}', '{"host":"a/b"}', 'x'.repeat(9000)]) {
      expect(decodePurge(Buffer.from(bad))).toBeUndefined()
    }
  })

  it('sequence numbers come from the node name only', () => {
    expect(purgeSequence('purge-0000000042')).toBe(42)
    expect(purgeSequence('purge-x')).toBeUndefined()
    expect(purgeSequence('other-0000000001')).toBeUndefined()
  })
})
